//! WhatsApp's media hosts: a small plain-HTTP server on this machine that the fake hands out
//! in its answer to the client's media-connection IQ (`<iq xmlns="w:m" type="set"><media_conn/>`
//! → `<media_conn auth=… ttl=…><host hostname="127.0.0.1:<port>"/>`). A test build of the
//! gateway sends `https://127.0.0.1…` requests over plain HTTP, so no certificate is needed.
//!
//! - **Uploads**: `POST /mms/<type>/<token>?auth=<auth>&token=<token>`, the body the media
//!   encrypted with its media key (AES-256-CBC, then a 10-byte HMAC) and `token` the URL-safe
//!   base64 of its SHA-256 (`file_enc_sha256`). The server checks `auth` (401 otherwise, as
//!   WhatsApp does with a stale token) and that the token is the body's hash (400), keeps the
//!   file under a new direct path `/v/t62.7118-24/fake-<n>.enc` and answers `{"url": …,
//!   "direct_path": …}`, as `whatsapp-rust` expects.
//! - **Downloads**: `GET <direct path>?auth=<auth>&token=<file_enc_sha256>` serves a file kept
//!   there (uploaded, or put there by [`FakeWhatsApp::send_image`]); a wrong `auth` is 401, a
//!   token that is not the file's hash 400, an unknown path 404.
//!
//! Every request is recorded ([`MediaRequest`]), every upload kept ([`MediaUpload`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::{net::TcpListener, task::JoinHandle};
use whatsapp_rust::{
    buffa::MessageField,
    wacore::{
        download::{DownloadUtils, MediaType},
        upload::encrypt_media_with_key,
    },
    waproto::whatsapp as wa,
};

use super::{Companion, FakeWhatsApp};

/// The `auth` token of the fake's media connection.
pub const MEDIA_AUTH: &str = "fake-media-auth";

/// A file the client uploaded.
#[derive(Clone, Debug)]
pub struct MediaUpload {
    /// The upload path's type: `image`, `video`, `audio`, `document`, …
    pub kind: String,
    /// The path's token (URL-safe base64 of the body's SHA-256).
    pub token: String,
    /// The encrypted body, as uploaded.
    pub body: Vec<u8>,
    /// What the server answered.
    pub url: String,
    pub direct_path: String,
}

/// A request to the media hosts.
#[derive(Clone, Debug)]
pub struct MediaRequest {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    /// The status it was answered with.
    pub status: u16,
}

/// What the media hosts keep.
#[derive(Default)]
pub(super) struct Media {
    /// Files by direct path.
    files: HashMap<String, Vec<u8>>,
    uploads: Vec<MediaUpload>,
    requests: Vec<MediaRequest>,
    next: usize,
}

impl Media {
    /// Keeps `body` under a new direct path, which it returns.
    fn keep(&mut self, body: Vec<u8>) -> String {
        self.next += 1;
        let path = format!("/v/t62.7118-24/fake-{}.enc", self.next);
        self.files.insert(path.clone(), body);
        path
    }
}

/// The running media hosts.
pub(super) struct MediaServer {
    /// `127.0.0.1:<port>`, the hostname handed out.
    pub(super) host: String,
    pub(super) media: Arc<Mutex<Media>>,
    task: JoinHandle<()>,
}

impl Drop for MediaServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Shared {
    host: String,
    media: Arc<Mutex<Media>>,
}

impl MediaServer {
    pub(super) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let media = Arc::new(Mutex::new(Media::default()));
        let app = Router::new().fallback(serve).with_state(Shared {
            host: host.clone(),
            media: media.clone(),
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { host, media, task }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Media> {
        self.media.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// URL-safe base64 (no padding) of the SHA-256 of `bytes`: WhatsApp's media token.
pub fn media_token(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes))
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.to_owned(), String::new()),
        })
        .collect()
}

async fn serve(State(shared): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let query = query(&uri);
    let mut media = shared.media.lock().unwrap_or_else(|p| p.into_inner());
    let (status, response) = answer(&shared.host, &mut media, &method, &path, &query, body);
    media.requests.push(MediaRequest {
        method: method.to_string(),
        path,
        query,
        status: status.as_u16(),
    });
    (status, response).into_response()
}

fn answer(
    host: &str,
    media: &mut Media,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    body: Bytes,
) -> (StatusCode, Response) {
    let text = |status: StatusCode, why: &str| (status, why.to_owned().into_response());
    if query.get("auth").map(String::as_str) != Some(MEDIA_AUTH) {
        return text(StatusCode::UNAUTHORIZED, "bad auth");
    }
    let token = query.get("token").cloned().unwrap_or_default();
    if *method == Method::POST {
        let Some((kind, in_path)) = path
            .strip_prefix("/mms/")
            .and_then(|rest| rest.split_once('/'))
        else {
            return text(StatusCode::NOT_FOUND, "not an upload path");
        };
        if query.contains_key("resume") {
            return (
                StatusCode::OK,
                axum::Json(serde_json::json!({})).into_response(),
            );
        }
        if in_path != token || token != media_token(&body) {
            return text(StatusCode::BAD_REQUEST, "the token is not the body's hash");
        }
        let direct_path = media.keep(body.to_vec());
        let url = format!("https://{host}{direct_path}");
        media.uploads.push(MediaUpload {
            kind: kind.to_owned(),
            token,
            body: body.to_vec(),
            url: url.clone(),
            direct_path: direct_path.clone(),
        });
        return (
            StatusCode::OK,
            axum::Json(serde_json::json!({"url": url, "direct_path": direct_path})).into_response(),
        );
    }
    if *method == Method::GET {
        let Some(file) = media.files.get(path) else {
            return text(StatusCode::NOT_FOUND, "no such file");
        };
        if token != media_token(file) {
            return text(StatusCode::BAD_REQUEST, "the token is not the file's hash");
        }
        return (StatusCode::OK, file.clone().into_response());
    }
    text(StatusCode::METHOD_NOT_ALLOWED, "")
}

/// Decrypts a media file (its HMAC checked) with the message's media key, as the client's
/// download does.
pub fn decrypt_media(
    encrypted: &[u8],
    media_key: &[u8],
    kind: MediaType,
) -> anyhow::Result<Vec<u8>> {
    DownloadUtils::verify_and_decrypt(encrypted, media_key, kind)
        .map_err(|e| anyhow::anyhow!("decrypting the media: {e:?}"))
}

impl FakeWhatsApp {
    /// `127.0.0.1:<port>`, the media host the fake hands out.
    pub fn media_host(&self) -> String {
        self.media.host.clone()
    }

    /// The files the client uploaded so far.
    pub fn media_uploads(&self) -> Vec<MediaUpload> {
        self.media.lock().uploads.clone()
    }

    /// The requests the media hosts got so far.
    pub fn media_requests(&self) -> Vec<MediaRequest> {
        self.media.lock().requests.clone()
    }

    /// The contact `from` sends the companion `to` an image: `bytes` encrypted with a fresh
    /// media key, kept on the media hosts under a new direct path, and an `imageMessage`
    /// (url, direct path, media key, both hashes, length, `mimetype`, `caption`) in a
    /// `<message type="media">`. Returns the message it sent.
    pub async fn send_image(
        &self,
        from: &str,
        to: &Companion,
        id: &str,
        bytes: &[u8],
        mimetype: &str,
        caption: Option<&str>,
    ) -> anyhow::Result<wa::message::ImageMessage> {
        let enc = encrypt_media_with_key(bytes, MediaType::Image, None)
            .context("encrypting the image")?;
        let direct_path = self.media.lock().keep(enc.data_to_upload.clone());
        let image = wa::message::ImageMessage {
            url: Some(format!("https://{}{direct_path}", self.media.host)),
            direct_path: Some(direct_path),
            mimetype: Some(mimetype.to_owned()),
            caption: caption.map(str::to_owned),
            media_key: Some(enc.media_key.to_vec()),
            file_sha256: Some(enc.file_sha256.to_vec()),
            file_enc_sha256: Some(enc.file_enc_sha256.to_vec()),
            file_length: Some(bytes.len() as u64),
            media_key_timestamp: Some(chrono::Utc::now().timestamp()),
            ..Default::default()
        };
        let message = wa::Message {
            image_message: MessageField::some(image.clone()),
            ..Default::default()
        };
        self.send_message(from, to, id, "media", &message).await?;
        Ok(image)
    }
}
