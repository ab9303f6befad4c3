//! The HTTP client the WhatsApp Web client uses: media uploads and downloads, and the version
//! check. A test build (feature `fake-whatsapp`) sends requests for hosts on this machine over
//! plain HTTP, so the fake WhatsApp server under `tests/` can play WhatsApp's media hosts
//! without a certificate; every other request goes out unchanged.

use whatsapp_rust::{
    http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient},
    wacore::net::{StreamingHttpResponse, UploadBody},
};

/// The client for a session's connection: `ureq`, with the test build's loopback rewrite.
pub struct WebHttp(UreqHttpClient);

/// The client for a session's connection.
pub fn client() -> WebHttp {
    WebHttp(UreqHttpClient::new())
}

/// The URL a request really goes to: unchanged, except in a test build for this machine.
fn target(mut request: HttpRequest) -> HttpRequest {
    if cfg!(feature = "fake-whatsapp") {
        request.url = local_plain(&request.url);
    }
    request
}

/// `url` with `https` replaced by `http` when its host is this machine.
fn local_plain(url: &str) -> String {
    let Some(rest) = url.strip_prefix("https://") else {
        return url.to_owned();
    };
    let host = rest.split(['/', ':', '?']).next().unwrap_or_default();
    if host == "127.0.0.1" || host == "localhost" {
        format!("http://{rest}")
    } else {
        url.to_owned()
    }
}

#[async_trait::async_trait]
impl HttpClient for WebHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.0.execute(target(request)).await
    }

    fn supports_streaming(&self) -> bool {
        self.0.supports_streaming()
    }

    fn execute_streaming(&self, request: HttpRequest) -> anyhow::Result<StreamingHttpResponse> {
        self.0.execute_streaming(target(request))
    }

    fn supports_upload_streaming(&self) -> bool {
        self.0.supports_upload_streaming()
    }

    fn execute_upload(
        &self,
        request: HttpRequest,
        body: UploadBody,
        content_length: u64,
    ) -> anyhow::Result<HttpResponse> {
        self.0.execute_upload(target(request), body, content_length)
    }

    fn resource_report(&self) -> Option<whatsapp_rust::wacore::stats::HttpResourceReport> {
        self.0.resource_report()
    }
}

#[cfg(test)]
mod tests {
    use super::local_plain;

    #[test]
    fn only_this_machine_goes_plain() {
        assert_eq!(
            local_plain("https://127.0.0.1:4431/mms/image/x?auth=1"),
            "http://127.0.0.1:4431/mms/image/x?auth=1"
        );
        assert_eq!(local_plain("https://localhost/x"), "http://localhost/x");
        assert_eq!(
            local_plain("https://mmg.whatsapp.net/mms/image/x"),
            "https://mmg.whatsapp.net/mms/image/x"
        );
        assert_eq!(
            local_plain("https://127.0.0.1.evil.example/x"),
            "https://127.0.0.1.evil.example/x"
        );
    }
}
