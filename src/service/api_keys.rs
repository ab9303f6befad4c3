//! API keys: create (the secret is returned once), list, revoke. Managed by users only.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::{
    auth::{Capabilities, Capability, Principal, token},
    domain::ids::ApiKeyId,
    error::{AppError, AppResult},
    repo,
    service::required_trimmed,
    state::AppState,
};

/// A new key's name.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct CreateApiKeyInput {
    /// A label, e.g. "CRM integration".
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(
        min = 1,
        max = 100,
        message = "Name is required (at most 100 characters)"
    ))]
    pub name: String,
    /// What the key may do (see the README's scope table). Default: `send_messages`,
    /// `read_messages`, `read_sessions`, `manage_contacts`. `manage_webhooks`,
    /// `read_webhook_secrets` and `manage_sessions` only when asked for; `manage_api_keys`
    /// is never granted to a key.
    #[serde(default)]
    #[schema(example = json!(["send_messages", "read_messages"]))]
    pub scopes: Option<Vec<String>>,
}

/// Validates requested scopes: known names, never `manage_api_keys`, at least one.
fn requested_scopes(scopes: Option<&[String]>) -> AppResult<Capabilities> {
    let Some(names) = scopes else {
        return Ok(Capabilities::default_key());
    };
    if names.is_empty() {
        return Err(AppError::field(
            "scopes",
            "Give at least one scope, or omit scopes for the default set",
        ));
    }
    let mut caps = Vec::with_capacity(names.len());
    for name in names {
        match Capability::parse(name.trim()) {
            Some(Capability::ManageApiKeys) => {
                return Err(AppError::field(
                    "scopes",
                    "manage_api_keys cannot be granted to an API key",
                ));
            }
            Some(c) => caps.push(c),
            None => {
                let known: Vec<&str> = Capability::ALL
                    .iter()
                    .filter(|c| **c != Capability::ManageApiKeys)
                    .map(|c| c.name())
                    .collect();
                return Err(AppError::field(
                    "scopes",
                    format!(
                        "Unknown scope '{}'; known scopes: {}",
                        name.chars().take(64).collect::<String>(),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(Capabilities::of(&caps))
}

/// A freshly created key: `key` is shown only this once.
#[derive(Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyCreatedOutput {
    /// Key id.
    #[graphql(
        skip_output,
        derived(
            name = "id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// The secret key for `X-API-Key`. Store it now: it cannot be shown again.
    pub key: String,
    /// The first characters of the key, for recognising it later.
    pub prefix: String,
    /// What the key may do.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A key as listed (no secret).
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyOutput {
    /// Key id.
    #[graphql(
        skip_output,
        derived(
            name = "id",
            into = "async_graphql::ID",
            owned,
            with = "crate::domain::ids::gql_id"
        )
    )]
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// What the key may do.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last time the key authenticated a request (minute granularity).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<entity::api_key::Model> for ApiKeyOutput {
    fn from(r: entity::api_key::Model) -> Self {
        ApiKeyOutput {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            scopes: Capabilities::from_stored(&r.scopes).names(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// What an API key sees of itself.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyWhoAmIOutput {
    /// The key (no secret).
    pub api_key: ApiKeyOutput,
    /// The tenant it acts for.
    pub tenant: crate::service::auth::TenantOutput,
}

/// The calling API key and its tenant (lets integrators check a key).
pub async fn whoami(state: &AppState, principal: &Principal) -> AppResult<ApiKeyWhoAmIOutput> {
    let crate::auth::Actor::ApiKey(id) = principal.actor else {
        return Err(AppError::Forbidden("This endpoint needs an API key".into()));
    };
    let key = repo::api_keys::get(&state.db, principal.tenant_id, id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Invalid or revoked API key".into()))?;
    let tenant = repo::tenants::get(&state.db, principal.tenant_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Tenant no longer exists".into()))?;
    Ok(ApiKeyWhoAmIOutput {
        api_key: key.into(),
        tenant: crate::service::auth::TenantOutput {
            id: tenant.id,
            name: tenant.name,
        },
    })
}

fn require_user(principal: &Principal) -> AppResult<crate::domain::ids::UserId> {
    principal.require(Capability::ManageApiKeys)?;
    principal.user_id().ok_or_else(|| {
        AppError::Forbidden("API keys are managed with a user access token, not an API key".into())
    })
}

/// Creates a key for the caller's tenant.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    input: CreateApiKeyInput,
) -> AppResult<ApiKeyCreatedOutput> {
    let user = require_user(principal)?;
    input.validate()?;
    let name = required_trimmed(
        &input.name,
        "name",
        "Name is required (at most 100 characters)",
    )?;
    let scopes = requested_scopes(input.scopes.as_deref())?;
    let key = token::new_api_key();
    let prefix = token::display_prefix(&key);
    let row = repo::api_keys::insert(
        &state.db,
        principal.tenant_id,
        repo::api_keys::NewApiKey {
            created_by: Some(user),
            name,
            prefix: &prefix,
            key_hash: &token::sha256_hex(&key),
            scopes: &scopes.to_stored(),
        },
        state.clock.now(),
    )
    .await?;
    Ok(ApiKeyCreatedOutput {
        id: row.id,
        name: row.name,
        key,
        prefix: row.prefix,
        scopes: scopes.names(),
        created_at: row.created_at,
    })
}

/// The tenant's live keys.
pub async fn list(state: &AppState, principal: &Principal) -> AppResult<Vec<ApiKeyOutput>> {
    require_user(principal)?;
    let rows = repo::api_keys::list_active(&state.db, principal.tenant_id).await?;
    Ok(rows.into_iter().map(ApiKeyOutput::from).collect())
}

/// Revokes a key; another tenant's or an unknown key is 404.
pub async fn revoke(state: &AppState, principal: &Principal, id: Uuid) -> AppResult<()> {
    require_user(principal)?;
    if repo::api_keys::revoke(
        &state.db,
        principal.tenant_id,
        ApiKeyId(id),
        state.clock.now(),
    )
    .await?
    {
        Ok(())
    } else {
        Err(AppError::NotFound("API key not found".into()))
    }
}
