//! The GraphQL adapter: resolvers over the same service functions as REST.
//!
//! `/graphql` (POST queries, GET serves GraphiQL) and `/graphql/ws` (`graphql-transport-ws`
//! and the legacy `graphql-ws`). Credentials come from the `Authorization` / `X-API-Key`
//! headers or, on WebSockets, from the `connection_init` payload.

mod auth;
mod contacts;
mod graphiql;
mod limits;
mod messages;
mod mutation;
mod query;
mod sessions;
mod subscription;
mod webhooks;
mod ws_guard;

use std::net::SocketAddr;

use async_graphql::extensions::apollo_persisted_queries::{
    ApolloPersistedQueries, LruCacheStorage,
};
use async_graphql::{ErrorExtensions, MergedObject, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::{
    Router,
    extract::{ConnectInfo, State, WebSocketUpgrade},
    http::HeaderMap,
    response::{IntoResponse, Response},
    routing::get,
};

pub use auth::GqlAuth;
pub use messages::{MessageEvent, MessageEventType};
pub use subscription::{QrEvent, SessionStatusEvent, SubscriptionRoot};

/// All queries.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    query::AuthQuery,
    sessions::SessionQuery,
    messages::MessageQuery,
    contacts::ContactQueries,
    webhooks::WebhookQueries,
);

/// All mutations.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    mutation::AuthMutation,
    sessions::SessionMutation,
    messages::MessageMutation,
    contacts::ContactMutations,
    webhooks::WebhookMutations,
);

use crate::{
    auth::Principal,
    error::{AppError, AppResult},
    state::AppState,
};

/// How many persisted-query documents each instance keeps (by SHA-256 of their text).
const PERSISTED_QUERY_CACHE: usize = 1024;

/// The schema type.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema; resolvers find the `AppState` in its data.
pub fn build_schema(state: Option<AppState>) -> AppSchema {
    let builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    );
    match state {
        Some(s) => {
            let limits = s.cfg.limits.graphql.clone();
            builder
                .limit_depth(limits.max_depth)
                .limit_complexity(limits.max_complexity)
                .extension(limits::Limits(limits))
                .extension(ApolloPersistedQueries::new(LruCacheStorage::new(
                    PERSISTED_QUERY_CACHE,
                )))
                .data(s)
                .finish()
        }
        None => builder.finish(),
    }
}

/// The SDL, as committed at `schema/schema.graphql`.
pub fn sdl() -> String {
    let mut s = build_schema(None).sdl();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// WebSocket read/write buffer size.
const WS_BUFFER: usize = 4 * 1024;
/// Largest message a WebSocket client may send (a GraphQL operation).
const WS_MAX_MESSAGE: usize = 1024 * 1024;

/// The client's address (behind trusted proxies, the one they name), for per-client limits.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

fn client_addr(app: &AppState, peer: SocketAddr, headers: &HeaderMap) -> ClientAddr {
    ClientAddr(crate::http::extract::client_ip_from(
        peer.ip(),
        headers,
        &app.cfg.limits.trusted_proxies,
    ))
}

#[derive(Clone)]
struct GqlState {
    app: AppState,
    schema: AppSchema,
    /// Largest file a GraphQL upload may carry.
    max_upload: usize,
}

/// Routes for `/graphql` and `/graphql/ws`.
pub fn router(app: AppState) -> Router {
    let schema = build_schema(Some(app.clone()));
    // async-graphql reads request bodies itself (past axum's DefaultBodyLimit): bound them here.
    let limits = BodyLimits {
        json: app.cfg.body_limit,
        multipart: usize::try_from(largest_media(&app.cfg.messaging.media))
            .unwrap_or(usize::MAX)
            .saturating_add(1024 * 1024),
    };
    Router::new()
        .route(
            "/graphql",
            get(graphiql::page)
                .post(execute)
                .layer(axum::middleware::from_fn_with_state(limits, body_limit)),
        )
        .route("/graphql/ws", get(websocket))
        .route("/graphql/assets/{name}", get(graphiql::asset))
        .with_state(GqlState {
            max_upload: limits.multipart,
            app,
            schema,
        })
}

#[derive(Clone, Copy)]
struct BodyLimits {
    json: usize,
    multipart: usize,
}

fn largest_media(m: &crate::config::MediaLimits) -> u64 {
    m.image.max(m.audio).max(m.video).max(m.document)
}

/// Bounds a GraphQL request body: the JSON limit, or for multipart uploads the largest media
/// limit (each file is then checked against its own kind's limit as it is staged).
async fn body_limit(
    State(limits): State<BodyLimits>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let limit = if multipart {
        limits.multipart
    } else {
        limits.json
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return AppError::PayloadTooLarge("Request body is larger than the allowed limit".into())
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// Runs a POSTed operation: JSON, or a GraphQL multipart request (uploads). Uploads need
/// credentials before their body is read, and carry one file at most.
async fn execute(
    State(g): State<GqlState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    use futures_util::TryStreamExt;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    let auth = auth::from_headers(&g.app, &headers).await;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let multipart = content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("multipart/"));
    if multipart && !matches!(auth, GqlAuth::Authenticated(_)) {
        return AppError::Unauthorized("Uploads need an access token or API key".into())
            .into_response();
    }
    let opts = async_graphql::http::MultipartOptions::default()
        .max_num_files(1)
        .max_file_size(g.max_upload);
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream).compat();
    let req = match async_graphql::http::receive_body(content_type, reader, opts).await {
        Ok(r) => r,
        Err(async_graphql::ParseRequestError::PayloadTooLarge) => {
            return AppError::PayloadTooLarge("The upload is larger than the allowed limit".into())
                .into_response();
        }
        Err(e) if over_limit(&e) => {
            // A chunked body without Content-Length ran past the limit while being read.
            return AppError::PayloadTooLarge(
                "Request body is larger than the allowed limit".into(),
            )
            .into_response();
        }
        Err(e) => {
            return AppError::field("body", format!("Invalid GraphQL request: {e}"))
                .into_response();
        }
    };
    let slot = limits::RateSlot::default();
    let mut req = req
        .data(client_addr(&g.app, addr, &headers))
        .data(slot.clone());
    if let GqlAuth::Authenticated(p) = &auth {
        match g.app.rate_limits.charge(p, 1).await {
            Ok(info) => *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = info,
            Err((e, info)) => return rate_limited(e, info),
        }
        req = req.data(limits::EntryCharged);
    }
    let mut res = g.schema.execute(req.data(auth)).await;
    null_failed_root(&mut res);
    let info = *slot.0.lock().unwrap_or_else(|p| p.into_inner());
    let refused = res.data == async_graphql::Value::Null
        && res.errors.first().is_some_and(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| *c == async_graphql::Value::from("RATE_LIMITED"))
        });
    let mut out = GraphQLResponse::from(res).into_response();
    if let Some(info) = info {
        crate::http::middleware::set_rate_headers(out.headers_mut(), &info);
        if refused {
            *out.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
            out.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(info.reset_secs.max(1)),
            );
        }
    }
    out
}

/// GraphQL's null propagation at the root. Every root query and mutation field is non-null
/// (checked by a test on the SDL), so when one of them fails the whole `data` must be null, as
/// the specification says; async-graphql leaves the other root fields in place instead.
fn null_failed_root(res: &mut async_graphql::Response) {
    let async_graphql::Value::Object(data) = &res.data else {
        return;
    };
    let failed = res.errors.iter().any(|e| match e.path.first() {
        Some(async_graphql::PathSegment::Field(key)) => data
            .get(key.as_str())
            .is_none_or(|v| *v == async_graphql::Value::Null),
        _ => false,
    });
    if failed {
        res.data = async_graphql::Value::Null;
    }
}

/// A 429 for a GraphQL request refused on arrival: a GraphQL error body, with the
/// `RateLimit-*` and `Retry-After` headers.
fn rate_limited(e: AppError, info: crate::service::rate_limit::RateInfo) -> Response {
    let body = async_graphql::Response::from_errors(vec![
        gql_error(e).into_server_error(async_graphql::Pos::default()),
    ]);
    let mut out = GraphQLResponse::from(body).into_response();
    *out.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
    crate::http::middleware::set_rate_headers(out.headers_mut(), &info);
    out.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(info.reset_secs.max(1)),
    );
    out
}

/// Whether a body-read failure was the body limit being reached.
fn over_limit(e: &async_graphql::ParseRequestError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match e {
        // `io::Error::source` skips the wrapped error itself: start from it.
        async_graphql::ParseRequestError::Io(io) => io
            .get_ref()
            .map(|e| e as &(dyn std::error::Error + 'static)),
        _ => None,
    };
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

async fn websocket(
    State(g): State<GqlState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header_auth = auth::from_headers(&g.app, &headers).await;
    let client = client_addr(&g.app, addr, &headers);
    // The protocol async-graphql picks: the first it knows among those offered.
    let legacy = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .map(str::trim)
                .find(|p| *p == "graphql-ws" || *p == "graphql-transport-ws")
        })
        .is_some_and(|p| p == "graphql-ws");
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        // GraphQL frames are small: tungstenite's 128 KiB default buffers would cost
        // ~256 KiB of memory per open subscription socket.
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(WS_MAX_MESSAGE)
        .max_frame_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            use futures_util::StreamExt;
            let app = g.app.clone();
            let limits = &app.cfg.limits;
            let guard = ws_guard::WsGuard::new(limits.ws_max_subscriptions, legacy);
            let (sink, stream) = socket.split();
            let (out_tx, out_rx) = tokio::sync::mpsc::channel(64);
            let writer = ws_guard::write_all(out_rx, sink);
            let input = guard.incoming(stream, out_tx.clone());
            let output = guard.outgoing(out_tx.clone());
            let deadline = guard.clone().init_deadline(limits.ws_init_timeout, out_tx);
            let (principal_tx, principal_rx) = tokio::sync::watch::channel(None::<Principal>);
            let init_app = app.clone();
            let serve = GraphQLWebSocket::new_with_pair(output, input, g.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let auth = auth::from_init_payload(&init_app, &payload, header_auth).await;
                    match &auth {
                        GqlAuth::Invalid(msg) => return Err(async_graphql::Error::new(msg.clone())),
                        GqlAuth::Unavailable => return Err(async_graphql::Error::new("Internal server error")),
                        GqlAuth::Authenticated(p) => {
                            principal_tx.send_replace(Some(*p));
                        }
                        GqlAuth::Anonymous => {}
                    }
                    let mut data = async_graphql::Data::default();
                    data.insert(auth);
                    data.insert(client);
                    Ok(data)
                })
                .serve();
            let session = async {
                tokio::select! {
                    () = serve => {}
                    () = deadline => {
                        tracing::debug!(client = %addr, "closing a GraphQL socket: no connection_init in time");
                    }
                    () = credentials_lapse(app.clone(), principal_rx) => {
                        tracing::info!(client = %addr, "closing a GraphQL socket: its credentials expired or were revoked");
                    }
                }
            };
            // The writer ends once every sender (held by the session's parts) is gone.
            tokio::join!(writer, session);
        })
        .into_response()
}

/// Resolves once the socket's credentials stop being valid: at the access token's expiry, or
/// when a periodic re-check finds the API key revoked. Never resolves for anonymous sockets.
async fn credentials_lapse(
    app: AppState,
    mut principal: tokio::sync::watch::Receiver<Option<Principal>>,
) {
    let p = loop {
        if let Some(p) = *principal.borrow_and_update() {
            break p;
        }
        if principal.changed().await.is_err() {
            return std::future::pending().await;
        }
    };
    loop {
        let mut wait = app.cfg.ws_reauth_interval;
        if let Some(left) = p
            .expires_at
            .map(|exp| (exp - app.clock.now()).to_std().unwrap_or_default())
        {
            wait = wait.min(left);
        }
        tokio::time::sleep(wait).await;
        match crate::service::auth::still_valid(&app, &p).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "re-checking socket credentials failed; keeping it open")
            }
        }
    }
}

/// Converts a service error into a GraphQL error with `extensions.code` (and `errors`).
pub fn gql_error(e: AppError) -> async_graphql::Error {
    let code = e.code();
    let fields = e.field_errors().cloned();
    async_graphql::Error::new(e.public_message()).extend_with(|_, ext| {
        ext.set("code", code);
        if let Some(f) = &fields
            && let Ok(v) = async_graphql::Value::from_json(serde_json::json!(f))
        {
            ext.set("errors", v);
        }
    })
}

/// `.gql()` on service results: the only way resolvers turn `AppError` into GraphQL errors.
pub trait GqlResultExt<T> {
    /// Maps the error with [`gql_error`].
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for AppResult<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(gql_error)
    }
}

/// The complexity of a paged list field: its selection once per row it may return (the
/// `limit` asked for, default 20, at most 100), plus one.
pub(crate) fn page_cost(limit: Option<i64>, child_complexity: usize) -> usize {
    let rows = limit.unwrap_or(20).clamp(1, 100) as usize;
    rows.saturating_mul(child_complexity).saturating_add(1)
}

/// The application state from the schema data.
fn app<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a AppState> {
    ctx.data::<AppState>()
}
