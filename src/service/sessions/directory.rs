//! Sessions by their provider settings, for the routes providers serve themselves.

use std::sync::Arc;

use serde_json::Value;

use super::settings;
use crate::{
    domain::ids::TenantId,
    provider::{
        ProviderError, ProviderKind,
        routes::{ProviderHost, SessionDirectory, SessionRef},
    },
    repo,
    state::AppState,
};

/// The directory over this gateway's database.
struct Directory(AppState);

#[async_trait::async_trait]
impl SessionDirectory for Directory {
    async fn find(
        &self,
        kind: ProviderKind,
        setting: &str,
        value: &str,
    ) -> Result<Vec<SessionRef>, ProviderError> {
        let state = &self.0;
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "looking up sessions for a provider route failed");
            ProviderError::Unavailable("The gateway could not look up sessions".into())
        };
        let rows = repo::session_lookup::by_provider_setting(&state.db, kind.as_str(), value)
            .await
            .map_err(|e| unavailable(&e))?;
        let mut found = Vec::new();
        for row in rows {
            let settings = settings::for_provider(state, &row)
                .await
                .map_err(|e| unavailable(&e))?;
            if settings.get(setting).and_then(Value::as_str) == Some(value) {
                found.push(SessionRef {
                    tenant_id: TenantId(row.tenant_id),
                    session_id: row.id,
                    settings,
                });
            }
        }
        Ok(found)
    }
}

/// What providers' own routes get: the update sink and the session directory.
pub fn provider_host(state: &AppState) -> ProviderHost {
    ProviderHost {
        updates: state.updates.clone(),
        sessions: Arc::new(Directory(state.clone())),
    }
}
