//! Per-session provider settings: given at creation under the provider's name, checked by the
//! provider, the public part kept on the session row and the secrets (the names the provider
//! lists as secret) in the session's encrypted device store, never shown again.

use serde_json::{Map, Value};

use crate::{
    domain::ids::TenantId,
    error::{AppError, AppResult},
    provider::{Provider, store::DeviceStore},
    service::device_store::DbDeviceStore,
    state::AppState,
};

/// Device store namespace of a session's secret settings (one entry per setting).
pub const SECRETS_NS: &str = "provider-secrets";

/// Settings as given, split: the part stored on the row, and the secrets.
pub struct SplitSettings {
    /// Kept on the session row, shown in responses.
    pub public: Option<Value>,
    /// Stored encrypted, write-only.
    pub secrets: Vec<(String, Vec<u8>)>,
}

/// Checks settings given at creation with the provider and splits off the secrets; per-field
/// errors (named `<provider>.<field>`) when the provider refuses them.
pub fn check(provider: &dyn Provider, given: Option<Value>) -> AppResult<SplitSettings> {
    let given = given.unwrap_or(Value::Null);
    let name = provider.kind().as_str();
    if let Err(errors) = provider.check_settings(&given) {
        let errors = errors
            .into_iter()
            .map(|(field, msg)| {
                let field = if field == name {
                    field
                } else {
                    format!("{name}.{field}")
                };
                (field, msg)
            })
            .collect();
        return Err(AppError::fields(errors));
    }
    let Value::Object(mut all) = given else {
        return Ok(SplitSettings {
            public: None,
            secrets: Vec::new(),
        });
    };
    let mut secrets = Vec::new();
    for key in provider.secret_settings() {
        if let Some(v) = all.remove(*key) {
            secrets.push(((*key).to_owned(), v.to_string().into_bytes()));
        }
    }
    Ok(SplitSettings {
        public: (!all.is_empty()).then_some(Value::Object(all)),
        secrets,
    })
}

/// Stores a new session's secret settings in its device store.
pub async fn store_secrets(
    state: &AppState,
    tenant: TenantId,
    session: uuid::Uuid,
    secrets: Vec<(String, Vec<u8>)>,
) -> AppResult<()> {
    if secrets.is_empty() {
        return Ok(());
    }
    let store = DbDeviceStore::for_session(state, tenant, session);
    let writes = secrets
        .into_iter()
        .map(|(k, v)| crate::provider::store::Write::put(SECRETS_NS, k, v))
        .collect();
    store.put_batch(writes).await.map_err(AppError::internal)
}

/// A session's settings as its provider gets them: the row's part with the secrets put back.
pub async fn for_provider(
    state: &AppState,
    session: &entity::wa_session::Model,
) -> AppResult<Value> {
    let mut all = match session
        .settings
        .as_deref()
        .map(serde_json::from_str::<Value>)
    {
        Some(Ok(Value::Object(m))) => m,
        Some(Err(e)) => return Err(AppError::internal(e)),
        _ => Map::new(),
    };
    let store = DbDeviceStore::for_session(state, TenantId(session.tenant_id), session.id);
    for (key, v) in store.list(SECRETS_NS).await.map_err(AppError::internal)? {
        let value = serde_json::from_slice(&v.value).map_err(AppError::internal)?;
        all.insert(key, value);
    }
    Ok(if all.is_empty() {
        Value::Null
    } else {
        Value::Object(all)
    })
}
