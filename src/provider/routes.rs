//! HTTP routes a provider serves itself, mounted at `/providers/<kind>/…` outside the
//! documented API: Meta's Cloud API, for one, calls a webhook to deliver inbound messages and
//! receipts. Such a route authenticates its caller itself (a signature, a verify token), finds
//! the sessions concerned through the [`SessionDirectory`] and reports on the update sink; a
//! report resolves once the update is stored, so the route answers its caller only then.

use std::sync::Arc;

use uuid::Uuid;

use super::{ProviderError, ProviderKind, UpdateSink};
use crate::domain::ids::TenantId;

/// A session a provider route is about.
#[derive(Clone, Debug)]
pub struct SessionRef {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The session.
    pub session_id: Uuid,
    /// Its provider settings, secrets included (for checking a caller's signature).
    pub settings: serde_json::Value,
}

/// Finds sessions for a provider's routes, across tenants.
#[async_trait::async_trait]
pub trait SessionDirectory: Send + Sync + 'static {
    /// The sessions of provider `kind` whose setting `setting` is the string `value`.
    async fn find(
        &self,
        kind: ProviderKind,
        setting: &str,
        value: &str,
    ) -> Result<Vec<SessionRef>, ProviderError>;
}

/// What a provider's routes may use.
#[derive(Clone)]
pub struct ProviderHost {
    /// Where inbound messages and receipts go (any instance stores them).
    pub updates: UpdateSink,
    /// Sessions by their settings.
    pub sessions: Arc<dyn SessionDirectory>,
}
