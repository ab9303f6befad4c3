//! The body of a media send: `multipart/form-data` (streamed; the file never sits in memory
//! whole) or JSON with the file base64-encoded.

use axum::{
    extract::{FromRequest, Multipart, Request},
    http::header,
};
use base64::Engine;
use futures_util::TryStreamExt;
use serde::Deserialize;
use tokio_util::io::StreamReader;

use super::extract::parse_json;
use crate::{
    auth::Principal,
    error::{AppError, AppResult},
    service::messages::{self, MessageKind, SendMediaInput, StagedUpload},
    state::AppState,
};

/// Largest text field of a media form.
const MAX_TEXT_FIELD: usize = 16 * 1024;
/// Most parts a media form may have.
const MAX_PARTS: usize = 16;

/// A media form read far enough to send: its text fields and the staged file.
pub struct MediaForm(pub SendMediaInput, pub Option<StagedUpload>);

/// The JSON variant: `{sessionId, to, caption?, fileName?, file: "<base64>"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonMedia {
    #[serde(default)]
    session_id: String,
    #[serde(default)]
    to: String,
    caption: Option<String>,
    file_name: Option<String>,
    quoted_message_id: Option<String>,
    file: Option<String>,
}

fn malformed(e: axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge("Request body is larger than the allowed limit".into())
    } else {
        AppError::field(
            "body",
            format!("Malformed multipart body: {}", e.body_text()),
        )
    }
}

async fn small_text(mut field: axum::extract::multipart::Field<'_>) -> AppResult<String> {
    let name = field.name().unwrap_or("field").to_owned();
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        if buf.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(AppError::field(
                &name,
                format!("{name} must be at most {MAX_TEXT_FIELD} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| AppError::field(&name, format!("{name} must be UTF-8 text")))
}

async fn read_multipart(
    state: &AppState,
    p: &Principal,
    kind: MessageKind,
    mut mp: Multipart,
) -> AppResult<MediaForm> {
    let mut input = SendMediaInput::default();
    let mut file = None;
    let mut parts = 0;
    while let Some(field) = mp.next_field().await.map_err(malformed)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(AppError::field("body", "Too many form fields"));
        }
        match field.name().unwrap_or("") {
            "file" => {
                if file.is_some() {
                    return Err(AppError::field("file", "Send one file per message"));
                }
                let name = field.file_name().map(str::to_owned);
                let reader = StreamReader::new(field.map_err(std::io::Error::other));
                file = Some(messages::stage_upload(state, p, kind, name, reader).await?);
            }
            "sessionId" => input.session_id = small_text(field).await?,
            "to" => input.to = small_text(field).await?,
            "caption" => input.caption = Some(small_text(field).await?),
            "fileName" => input.file_name = Some(small_text(field).await?),
            "quotedMessageId" => input.quoted_message_id = Some(small_text(field).await?),
            // Unknown fields are read and ignored, like unknown JSON keys.
            _ => drop(small_text(field).await?),
        }
    }
    Ok(MediaForm(input, file))
}

/// Largest file accepted base64-encoded in JSON (it is held in memory; use multipart beyond).
const MAX_JSON_FILE: u64 = 16 * 1024 * 1024;

async fn read_json(
    state: &AppState,
    p: &Principal,
    kind: MessageKind,
    req: Request,
) -> AppResult<MediaForm> {
    let limit = messages::media::limit_for(kind, &state.cfg.messaging.media).min(MAX_JSON_FILE);
    // base64 is 4/3 of the file, plus the other fields.
    let cap = usize::try_from(limit.saturating_mul(4) / 3 + 64 * 1024).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(req.into_body(), cap)
        .await
        .map_err(|_| {
            AppError::PayloadTooLarge(format!(
                "The {} must be at most {limit} bytes in JSON; send larger files as multipart/form-data",
                kind.as_str()
            ))
        })?;
    let body: JsonMedia = parse_json(&bytes)?;
    let input = SendMediaInput {
        session_id: body.session_id,
        to: body.to,
        caption: body.caption,
        file_name: body.file_name.clone(),
        quoted_message_id: body.quoted_message_id,
    };
    let file = match body
        .file
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(encoded) => {
            // Accept a bare base64 string or a `data:<mime>;base64,` URL.
            let raw = encoded.split_once(";base64,").map_or(encoded, |(_, b)| b);
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|_| AppError::field("file", "file must be base64-encoded"))?;
            Some(messages::stage_upload(state, p, kind, body.file_name, &bytes[..]).await?)
        }
    };
    Ok(MediaForm(input, file))
}

/// Reads a media form for `kind`.
pub async fn read(
    state: &AppState,
    p: &Principal,
    kind: MessageKind,
    req: Request,
) -> AppResult<MediaForm> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        // The whole form is bounded too (the file is checked against its own limit as it
        // streams in; this stops endless headers or preambles).
        let limit = messages::media::limit_for(kind, &state.cfg.messaging.media);
        let cap = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1024 * 1024);
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(
            parts,
            axum::body::Body::new(http_body_util::Limited::new(body, cap)),
        );
        let mp = Multipart::from_request(req, state)
            .await
            .map_err(|e| AppError::field("body", format!("Malformed multipart body: {e}")))?;
        read_multipart(state, p, kind, mp).await
    } else if content_type.starts_with("application/json") {
        read_json(state, p, kind, req).await
    } else {
        Err(AppError::UnsupportedMediaType(
            "Content-Type must be multipart/form-data (or application/json with a base64 file)"
                .into(),
        ))
    }
}
