//! Outbound HTTP for webhooks, behind a trait so tests can script receivers and failures.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

/// Bytes of a response body kept for the delivery log.
pub const KEEP_BODY: usize = 1024;
/// Bytes of a response body read at most (the rest is dropped with the connection).
const READ_BODY: usize = 64 * 1024;

/// One webhook POST.
pub struct WebhookRequest {
    /// Target URL.
    pub url: String,
    /// Extra headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: String,
    /// Longest wait for the answer.
    pub timeout: Duration,
}

/// The receiver's answer.
pub struct WebhookResponse {
    /// HTTP status.
    pub status: u16,
    /// The first [`KEEP_BODY`] bytes of the body (lossy UTF-8).
    pub body: String,
}

/// Sends webhook requests.
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    /// POSTs the request; `Err` when no HTTP answer came (with the reason).
    async fn post(&self, req: WebhookRequest) -> Result<WebhookResponse, String>;
}

/// The real transport: reqwest, no redirects followed, internal addresses refused unless
/// allowed.
pub struct HttpTransport {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpTransport {
    /// A transport; `allow_private` lets webhooks reach loopback and private networks.
    pub fn new(allow_private: bool) -> anyhow::Result<Arc<Self>> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wagate-webhooks/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true);
        if !allow_private {
            // A proxy would resolve and connect for us, past the address check.
            builder = builder
                .no_proxy()
                .dns_resolver(super::target::PublicOnlyResolver);
        }
        Ok(Arc::new(Self {
            client: builder.build()?,
            allow_private,
        }))
    }
}

#[async_trait]
impl WebhookTransport for HttpTransport {
    async fn post(&self, req: WebhookRequest) -> Result<WebhookResponse, String> {
        let url = reqwest::Url::parse(&req.url).map_err(|e| format!("invalid URL: {e}"))?;
        if !self.allow_private
            && let Some(ip) = url
                .host_str()
                .and_then(|h| h.trim_matches(['[', ']']).parse().ok())
            && super::target::is_internal(ip)
        {
            return Err("refused: the URL points at an internal address".into());
        }
        let mut rb = self
            .client
            .post(url)
            .timeout(req.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (k, v) in req.headers {
            rb = rb.header(k, v);
        }
        let mut res = rb.body(req.body).send().await.map_err(describe)?;
        let status = res.status().as_u16();
        let mut body = Vec::new();
        while body.len() < READ_BODY {
            match res.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        body.truncate(KEEP_BODY);
        Ok(WebhookResponse {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// A short reason for a failed request.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout: no answer in time".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    }
}
