//! Assembling and running the gateway: `startup(cfg, listener, shutdown)`.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::serve::ListenerExt;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use tokio_util::sync::CancellationToken;

use crate::{
    auth::jwt::{JwtKeys, load_or_create_secret},
    config::Config,
    db,
    events::EventBus,
    http,
    provider::UpdateSink,
    secrets::{Cipher, load_or_create_key},
    service::{device_store, messages, sessions, webhooks},
    state::{AppState, Overrides},
};

/// Creates the data dir, loads the JWT secret and the encryption key, connects and migrates
/// the database, and checks that the key is the one the database's secrets are sealed with.
/// Background tasks stop when `shutdown` is cancelled (`serve` cancels it when it returns).
pub async fn build_state(
    cfg: Config,
    overrides: Overrides,
    shutdown: CancellationToken,
) -> anyhow::Result<AppState> {
    cfg.ensure_data_dir()?;
    let warm = tokio::task::spawn_blocking(crate::phone::warm_up);
    let secret = load_or_create_secret(cfg.jwt_secret.as_ref(), &cfg.data_dir)?;
    let cipher = Arc::new(Cipher::new(&load_or_create_key(
        cfg.encryption_key.as_ref(),
        &cfg.data_dir,
    )?));
    let redis = match &cfg.redis_url {
        Some(url) => Some(redis::Client::open(url.expose_secret())?),
        None => None,
    };
    let conn = db::connect(&cfg).await?;
    db::migrate(&conn).await?;
    let now = overrides
        .clock
        .as_ref()
        .map_or_else(chrono::Utc::now, |c| c.now());
    device_store::verify_key(&conn, &cipher, now).await?;
    let bus = match &redis {
        Some(client) => {
            let bus = EventBus::with_redis(client.clone(), cfg.event_buffer, shutdown.clone());
            if !bus.wait_ready(Duration::from_secs(3)).await {
                tracing::warn!("Redis is unreachable; events stay local until it is back");
            }
            bus
        }
        None => EventBus::in_process(cfg.event_buffer),
    };
    let _ = warm.await;
    let (updates, updates_rx) = UpdateSink::channel(4096);
    let state = AppState::new(
        conn,
        Arc::new(cfg),
        JwtKeys::new(&secret),
        cipher,
        redis,
        bus,
        overrides,
        updates,
    )?;
    if let Err(e) = state.media.clear_staging().await {
        tracing::warn!(error = %e, "could not clear the media staging area");
    }
    tracing::info!(instance = %state.cfg.runtime.instance_id, "instance id");
    spawn_background(&state, updates_rx, &shutdown);
    Ok(state)
}

/// Starts the supervised background tasks: receipts and inbound messages, the session
/// supervisor, the outbox dispatcher and the webhook worker.
fn spawn_background(
    state: &AppState,
    updates_rx: tokio::sync::mpsc::Receiver<crate::provider::MessageUpdate>,
    shutdown: &CancellationToken,
) {
    let tasks = state.tasks.clone();
    let rx = Arc::new(tokio::sync::Mutex::new(updates_rx));
    let s = state.clone();
    tasks.spawn("updates", shutdown.clone(), move || {
        let (s, rx) = (s.clone(), rx.clone());
        async move { messages::run_updates(s, &mut *rx.lock().await).await }
    });
    let (s, stop) = (state.clone(), shutdown.clone());
    tasks.spawn("sessions", shutdown.clone(), move || {
        sessions::supervisor::run(s.clone(), stop.clone())
    });
    if state.cfg.messaging.dispatch.enabled {
        let (s, stop) = (state.clone(), shutdown.clone());
        tasks.spawn("dispatcher", shutdown.clone(), move || {
            messages::dispatch::run(s.clone(), stop.clone())
        });
    }
    if state.cfg.webhooks.enabled {
        let (s, stop) = (state.clone(), shutdown.clone());
        tasks.spawn("webhooks", shutdown.clone(), move || {
            webhooks::worker::run_all(s.clone(), stop.clone())
        });
    }
}

/// Serves the application on `listener` until `shutdown` resolves, then drains and closes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = http::router(state.clone());
    let pruner = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                state.prune_limiters();
            }
        })
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "wagate listening");
    }
    // Small frames (JSON responses, subscription events) must not wait for Nagle's algorithm.
    let listener = http::conn::EnvelopeListener(listener).tap_io(|io| {
        if let Err(e) = io.get_ref().set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    pruner.abort();
    sessions::supervisor::hand_back(&state).await;
    if let Err(e) = state.db.close_by_ref().await {
        tracing::warn!(error = %e, "closing the database pool");
    }
    tracing::info!("wagate stopped");
    result.map_err(Into::into)
}

/// Builds the state from `cfg` and serves on `listener` until `shutdown`.
pub async fn startup(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let background = CancellationToken::new();
    let state = build_state(cfg, Overrides::default(), background.clone()).await?;
    let result = serve(state, listener, shutdown).await;
    background.cancel();
    result
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}
