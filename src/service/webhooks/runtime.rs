//! This instance's webhook machinery, held in `AppState`.

use std::sync::Arc;

use super::transport;

/// This instance's webhook machinery, held in `AppState`.
#[derive(Clone)]
pub struct WebhookRuntime {
    /// Wakes the worker when deliveries are committed.
    pub wake: Arc<tokio::sync::Notify>,
    /// Outbound HTTP.
    pub transport: Arc<dyn transport::WebhookTransport>,
}
