//! `/api/messages` (JWT) and `/api/external/messages` (API key): sends into the outbox,
//! message status, listing and media download.
//!
//! Every send exists twice, once per auth scheme, with the same body and answer; the
//! `sends!` macro declares both from one line so the twins cannot drift apart.

use axum::{
    body::Body,
    extract::{FromRequestParts, Request, State},
    http::{HeaderValue, header, request::Parts},
    response::{IntoResponse, Response},
};
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use super::{
    envelope::{self, Envelope, PagedEnvelope},
    extract::{KeyAuth, PageQuery, Path, Query, UserAuth, ValidJson},
    media_form::{self, MediaForm},
};
use crate::{
    error::{AppError, AppResult, ErrorEnvelope},
    service::messages::{
        self, MessageFilter, MessageKind, MessageOutput, SendLocationInput, SendMediaForm,
        SendMediaJson, SendOutput, SendTextInput,
    },
    state::AppState,
};

/// The optional `Idempotency-Key` header of a send: the same key within
/// `WAGATE_IDEMPOTENCY_TTL` (24 h) returns the first message instead of sending again.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                AppError::field("Idempotency-Key", "Idempotency-Key must be visible ASCII")
            })?),
        };
        messages::idempotency_key(raw).map(IdempotencyKey)
    }
}

/// Declares a JSON send and its API-key twin.
macro_rules! json_send {
    ($(#[$doc:meta])* $user:ident, $ext:ident, $op:literal, $path:tt, $ext_path:tt, $input:ty, $svc:path) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, operation_id = $op, tag = "messages", security(("bearerAuth" = [])),
            params(("Idempotency-Key" = Option<String>, Header, description = "Same key within 24 h returns the first message")),
            request_body = $input,
            responses(
                (status = 200, description = "Stored and queued", body = Envelope<SendOutput>),
                (status = 400, description = "Validation failed", body = ErrorEnvelope),
                (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
                (status = 404, description = "Session not found in your tenant", body = ErrorEnvelope),
                (status = 409, description = "Idempotency-Key reused for a different request", body = ErrorEnvelope),
                (status = 502, description = "Session not connected", body = ErrorEnvelope),
            ))]
        pub async fn $user(
            State(state): State<AppState>,
            UserAuth(p): UserAuth,
            IdempotencyKey(key): IdempotencyKey,
            ValidJson(input): ValidJson<$input>,
        ) -> AppResult<Response> {
            Ok(envelope::ok($svc(&state, &p, input, key).await?))
        }

        $(#[$doc])*
        #[utoipa::path(post, path = $ext_path, operation_id = concat!($op, "WithApiKey"), tag = "messages", security(("apiKeyAuth" = [])),
            params(("Idempotency-Key" = Option<String>, Header, description = "Same key within 24 h returns the first message")),
            request_body = $input,
            responses(
                (status = 200, description = "Stored and queued", body = Envelope<SendOutput>),
                (status = 400, description = "Validation failed", body = ErrorEnvelope),
                (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
                (status = 404, description = "Session not found in your tenant", body = ErrorEnvelope),
                (status = 409, description = "Idempotency-Key reused for a different request", body = ErrorEnvelope),
                (status = 502, description = "Session not connected", body = ErrorEnvelope),
            ))]
        pub async fn $ext(
            State(state): State<AppState>,
            KeyAuth(p): KeyAuth,
            IdempotencyKey(key): IdempotencyKey,
            ValidJson(input): ValidJson<$input>,
        ) -> AppResult<Response> {
            Ok(envelope::ok($svc(&state, &p, input, key).await?))
        }
    };
}

/// Declares a media send (multipart, or JSON with a base64 file) and its API-key twin.
macro_rules! media_send {
    ($(#[$doc:meta])* $user:ident, $ext:ident, $op:literal, $path:tt, $ext_path:tt, $kind:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, operation_id = $op, tag = "messages", security(("bearerAuth" = [])),
            params(("Idempotency-Key" = Option<String>, Header, description = "Same key within 24 h returns the first message")),
            request_body(content((SendMediaForm = "multipart/form-data"), (SendMediaJson = "application/json")), description = "The file as multipart, or base64 in JSON"),
            responses(
                (status = 200, description = "Stored and queued", body = Envelope<SendOutput>),
                (status = 400, description = "Validation failed (empty file, wrong type, bad fields)", body = ErrorEnvelope),
                (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
                (status = 404, description = "Session not found in your tenant", body = ErrorEnvelope),
                (status = 413, description = "File over the size limit for its type", body = ErrorEnvelope),
                (status = 415, description = "Not multipart/form-data or JSON", body = ErrorEnvelope),
                (status = 502, description = "Session not connected", body = ErrorEnvelope),
            ))]
        pub async fn $user(
            State(state): State<AppState>,
            UserAuth(p): UserAuth,
            IdempotencyKey(key): IdempotencyKey,
            req: Request,
        ) -> AppResult<Response> {
            let MediaForm(input, file) = media_form::read(&state, &p, $kind, req).await?;
            Ok(envelope::ok(messages::send_media(&state, &p, $kind, input, file, key).await?))
        }

        $(#[$doc])*
        #[utoipa::path(post, path = $ext_path, operation_id = concat!($op, "WithApiKey"), tag = "messages", security(("apiKeyAuth" = [])),
            params(("Idempotency-Key" = Option<String>, Header, description = "Same key within 24 h returns the first message")),
            request_body(content((SendMediaForm = "multipart/form-data"), (SendMediaJson = "application/json")), description = "The file as multipart, or base64 in JSON"),
            responses(
                (status = 200, description = "Stored and queued", body = Envelope<SendOutput>),
                (status = 400, description = "Validation failed (empty file, wrong type, bad fields)", body = ErrorEnvelope),
                (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
                (status = 404, description = "Session not found in your tenant", body = ErrorEnvelope),
                (status = 413, description = "File over the size limit for its type", body = ErrorEnvelope),
                (status = 415, description = "Not multipart/form-data or JSON", body = ErrorEnvelope),
                (status = 502, description = "Session not connected", body = ErrorEnvelope),
            ))]
        pub async fn $ext(
            State(state): State<AppState>,
            KeyAuth(p): KeyAuth,
            IdempotencyKey(key): IdempotencyKey,
            req: Request,
        ) -> AppResult<Response> {
            let MediaForm(input, file) = media_form::read(&state, &p, $kind, req).await?;
            Ok(envelope::ok(messages::send_media(&state, &p, $kind, input, file, key).await?))
        }
    };
}

json_send!(
    /// Send a text message (1–4096 characters) through a connected session.
    ///
    /// `to` takes any international phone format; a session that is not `connected` is 502. The
    /// message is stored as `queued` and sent in the background with retries on transient failures,
    /// its status changes published as `message.status` events; the same `Idempotency-Key` within
    /// 24 h returns the first message. A user token, or an API key with the `send_messages` scope.
    send_text, external_send_text, "sendTextMessage",
    "/api/messages/send-text", "/api/external/messages/send-text",
    SendTextInput, messages::send_text
);
json_send!(
    /// Send a location.
    ///
    /// `latitude` (−90 to 90) and `longitude` (−180 to 180) are required, `name` and `address`
    /// optional; a session that is not `connected` is 502. The message is stored as `queued` and
    /// sent in the background, its status changes published as `message.status` events; the same
    /// `Idempotency-Key` within 24 h returns the first message. A user token, or an API key with
    /// the `send_messages` scope.
    send_location, external_send_location, "sendLocationMessage",
    "/api/messages/send-location", "/api/external/messages/send-location",
    SendLocationInput, messages::send_location
);
media_send!(
    /// Send an image (JPEG, PNG or WebP, at most 5 MB by default) with an optional caption.
    ///
    /// The file comes as multipart field `file` or base64 in JSON and its type is detected from its
    /// bytes; a session that is not `connected` is 502. The message is stored as `queued` and sent
    /// in the background, its status changes published as `message.status` events; the same
    /// `Idempotency-Key` within 24 h returns the first message. A user token, or an API key with
    /// the `send_messages` scope.
    send_image, external_send_image, "sendImageMessage",
    "/api/messages/send-image", "/api/external/messages/send-image",
    MessageKind::Image
);
media_send!(
    /// Send a document (any file, at most 100 MB by default) with an optional caption.
    ///
    /// The file comes as multipart field `file` or base64 in JSON, shown to the recipient as
    /// `fileName` (default: the uploaded file's name); a session that is not `connected` is 502.
    /// The message is stored as `queued` and sent in the background, its status changes published
    /// as `message.status` events; the same `Idempotency-Key` within 24 h returns the first
    /// message. A user token, or an API key with the `send_messages` scope.
    send_document, external_send_document, "sendDocumentMessage",
    "/api/messages/send-document", "/api/external/messages/send-document",
    MessageKind::Document
);
media_send!(
    /// Send a video (MP4 or 3GPP, at most 16 MB by default) with an optional caption.
    ///
    /// The file comes as multipart field `file` or base64 in JSON and its type is detected from its
    /// bytes; a session that is not `connected` is 502. The message is stored as `queued` and sent
    /// in the background, its status changes published as `message.status` events; the same
    /// `Idempotency-Key` within 24 h returns the first message. A user token, or an API key with
    /// the `send_messages` scope.
    send_video, external_send_video, "sendVideoMessage",
    "/api/messages/send-video", "/api/external/messages/send-video",
    MessageKind::Video
);
media_send!(
    /// Send audio (AAC, M4A, MP3, AMR or OGG/Opus, at most 16 MB by default).
    ///
    /// The file comes as multipart field `file` or base64 in JSON and its type is detected from its
    /// bytes; a caption is 400, and a session that is not `connected` is 502. The message is stored
    /// as `queued` and sent in the background, its status changes published as `message.status`
    /// events; the same `Idempotency-Key` within 24 h returns the first message. A user token, or
    /// an API key with the `send_messages` scope.
    send_audio, external_send_audio, "sendAudioMessage",
    "/api/messages/send-audio", "/api/external/messages/send-audio",
    MessageKind::Audio
);

/// `?sessionId=&direction=&status=&to=&page=&limit=`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(rename_all = "camelCase", parameter_in = Query)]
pub struct MessageQuery {
    /// Only this session's messages.
    #[param(value_type = Option<uuid::Uuid>)]
    pub session_id: Option<String>,
    /// `outbound` or `inbound`.
    #[param(value_type = Option<crate::service::messages::Direction>)]
    pub direction: Option<String>,
    /// `queued`, `sent`, `delivered`, `read`, `played`, `failed` or `received`.
    #[param(value_type = Option<crate::service::messages::MessageStatus>)]
    pub status: Option<String>,
    /// Only messages to or from this number (any format).
    pub to: Option<String>,
    /// Page number (default 1).
    #[param(value_type = Option<i64>, minimum = 1)]
    pub page: Option<String>,
    /// Items per page (default 20, at most 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// List messages, newest first.
///
/// Filters: `sessionId` (another tenant's session is 404), `direction`, `status`, and `to` (any
/// phone format, matching messages to or from that number); paged with `page` and `limit` (default
/// 20, at most 100). Needs a user access token.
#[utoipa::path(get, path = "/api/messages", operation_id = "listMessages", tag = "messages",
    security(("bearerAuth" = [])), params(MessageQuery),
    responses(
        (status = 200, description = "A page of messages", body = PagedEnvelope<MessageOutput>),
        (status = 400, description = "Bad filter, page or limit", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    ))]
pub async fn list(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Query(q): Query<MessageQuery>,
) -> AppResult<Response> {
    let page = PageQuery {
        page: q.page,
        limit: q.limit,
    }
    .request()?;
    let filter = MessageFilter {
        session_id: q.session_id,
        direction: q.direction,
        status: q.status,
        to: q.to,
    };
    let out = messages::list(&state, &p, filter, page).await?;
    Ok(envelope::paged(out.data, out.pagination))
}

/// Get a message and its delivery status.
///
/// Shows direction, type, content, status with its timestamps (`sentAt`, `deliveredAt`, `readAt`,
/// `playedAt`, `failedAt`), the last error and the dispatch attempts; a message of another
/// tenant is 404. Needs a user access token. With an API key use `GET /api/external/messages/{id}`.
#[utoipa::path(get, path = "/api/messages/{id}", operation_id = "getMessage", tag = "messages",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Message UUID")),
    responses(
        (status = 200, description = "The message", body = Envelope<MessageOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn get(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(messages::get(&state, &p, id).await?))
}

/// Get a message and its delivery status with an API key.
///
/// Same answer as `GET /api/messages/{id}`: direction, type, content, status with its timestamps,
/// the last error and the dispatch attempts; another tenant's message is 404. Needs an API key with
/// the `read_messages` scope.
#[utoipa::path(get, path = "/api/external/messages/{id}", operation_id = "getMessageWithApiKey", tag = "messages",
    security(("apiKeyAuth" = [])), params(("id" = Uuid, Path, description = "Message UUID")),
    responses(
        (status = 200, description = "The message", body = Envelope<MessageOutput>),
        (status = 404, description = "Not found in your tenant", body = ErrorEnvelope),
    ))]
pub async fn external_get(
    State(state): State<AppState>,
    KeyAuth(p): KeyAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    Ok(envelope::ok(messages::get(&state, &p, id).await?))
}

/// Download a message's media (the owning tenant only).
///
/// Streams the file with its detected `Content-Type` and `Content-Disposition: attachment` under
/// its file name (non-ASCII characters replaced); a message without media is 404. Needs a user
/// access token.
#[utoipa::path(get, path = "/api/messages/{id}/media", operation_id = "downloadMessageMedia", tag = "messages",
    security(("bearerAuth" = [])), params(("id" = Uuid, Path, description = "Message UUID")),
    responses(
        (status = 200, description = "The file, with its detected Content-Type", content_type = "application/octet-stream", body = super::envelope::BinaryFile),
        (status = 404, description = "No such message in your tenant, or it has no media", body = ErrorEnvelope),
    ))]
pub async fn media(
    State(state): State<AppState>,
    UserAuth(p): UserAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let m = messages::media(&state, &p, id).await?;
    let mut res = Body::from_stream(ReaderStream::new(m.reader)).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&m.mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(m.size));
    let name = m.file_name.unwrap_or_else(|| "media".into());
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}
