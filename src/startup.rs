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
    events::{EventBus, commands::CommandBus},
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
    let instance = cfg.runtime.instance_id.clone();
    let late = CancellationToken::new();
    let (commands, commands_rx) = match &redis {
        Some(client) => {
            let (c, rx) = CommandBus::with_redis(client.clone(), &instance, late.clone());
            if !c.wait_ready(Duration::from_secs(3)).await {
                tracing::warn!(
                    "Redis is unreachable; commands from other instances wait until it is back"
                );
            }
            (c, rx)
        }
        None => CommandBus::in_process(&instance),
    };
    let _ = warm.await;
    let (updates, updates_rx) = UpdateSink::channel(4096);
    let mut state = AppState::new(
        conn,
        Arc::new(cfg),
        JwtKeys::new(&secret),
        cipher,
        redis,
        bus,
        overrides,
        updates,
        commands,
    )?;
    if let Err(e) = state.media.clear_staging().await {
        tracing::warn!(error = %e, "could not clear the media staging area");
    }
    tracing::info!(instance = %state.cfg.runtime.instance_id, "instance id");
    // Sessions recorded under this id belong to an earlier life of this instance (a restart
    // with a fixed WAGATE_INSTANCE_ID): nothing runs them now, so offer them to everyone, once,
    // before anything can connect. Done inside the supervisor task, it raced the first
    // requests, and a restarted supervisor would have released sessions live here.
    let me = state.cfg.runtime.instance_id.clone();
    if let Err(e) = crate::repo::session_leases::release_all(&state.db, &me).await {
        tracing::warn!(error = %e, "could not release sessions of an earlier run");
    }
    state.stopping = crate::state::Stopping {
        work: shutdown.clone(),
        late,
    };
    spawn_background(&state, updates_rx, commands_rx);
    Ok(state)
}

/// Starts the supervised background tasks: receipts and inbound messages, the session
/// supervisor, the outbox dispatcher and the webhook worker.
fn spawn_background(
    state: &AppState,
    updates_rx: tokio::sync::mpsc::Receiver<
        crate::provider::Reported<crate::provider::MessageUpdate>,
    >,
    commands_rx: tokio::sync::mpsc::Receiver<crate::events::commands::Incoming>,
) {
    let tasks = state.tasks.clone();
    let (shutdown, late) = (&state.stopping.work, &state.stopping.late);
    let rx = Arc::new(tokio::sync::Mutex::new(commands_rx));
    let (s, stop) = (state.clone(), late.clone());
    tasks.spawn("commands", late.clone(), move || {
        let (s, rx, stop) = (s.clone(), rx.clone(), stop.clone());
        async move { sessions::commands::run(s, &mut *rx.lock().await, stop).await }
    });
    let rx = Arc::new(tokio::sync::Mutex::new(updates_rx));
    let (s, stop) = (state.clone(), late.clone());
    tasks.spawn("updates", late.clone(), move || {
        let (s, rx, stop) = (s.clone(), rx.clone(), stop.clone());
        async move { messages::run_updates(s, &mut *rx.lock().await, stop).await }
    });
    // Heartbeats go on while sends drain, so no other instance takes a session meanwhile.
    let (s, stop) = (state.clone(), late.clone());
    tasks.spawn("sessions", late.clone(), move || {
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
    drain(&state).await;
    if let Err(e) = state.db.close_by_ref().await {
        tracing::warn!(error = %e, "closing the database pool");
    }
    tracing::info!("wagate stopped");
    result.map_err(Into::into)
}

/// Background work that claims rows; on shutdown each finishes what it started.
const CLAIMERS: [&str; 2] = ["dispatcher", "webhooks"];

/// The graceful stop, within `WAGATE_SHUTDOWN_GRACE`: stop claiming and let in-flight sends
/// and deliveries finish (unstarted claims are given back), then hand the sessions back
/// (connections closed, leases released for another instance to take at once), then apply
/// the receipts the connections reported last. The pool is closed after this.
pub async fn drain(state: &AppState) {
    let grace = state.cfg.runtime.shutdown_grace;
    let started = tokio::time::Instant::now();
    state.stopping.work.cancel();
    let busy = state.tasks.wait_stopped(&CLAIMERS, grace).await;
    if !busy.is_empty() {
        tracing::warn!(tasks = ?busy, grace = ?grace, "shutdown grace ran out; their claims are retried after their lease");
    }
    sessions::supervisor::hand_back(state).await;
    state.stopping.late.cancel();
    let left = grace
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(1));
    let busy = state
        .tasks
        .wait_stopped(&["updates", "commands", "sessions"], left)
        .await;
    if !busy.is_empty() {
        tracing::warn!(tasks = ?busy, "reports still being applied at shutdown");
    }
    tracing::info!(took = ?started.elapsed(), "drained");
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
