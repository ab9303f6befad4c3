//! `/api/external/api-keys`: API keys for server-to-server use, managed with a user JWT.

use axum::{extract::State, response::Response};
use uuid::Uuid;

use super::{
    envelope::{self, Envelope, MessageEnvelope},
    extract::{AnyAuth, KeyAuth, Path, ValidJson},
};
use crate::{
    error::{AppResult, ErrorEnvelope},
    service::api_keys::{
        self, ApiKeyCreatedOutput, ApiKeyOutput, ApiKeyWhoAmIOutput, CreateApiKeyInput,
    },
    state::AppState,
};

/// Create an API key. The `key` in the response is shown only this once.
///
/// `name` takes 1 to 100 characters. `scopes` defaults to `send_messages`, `read_messages`,
/// `read_sessions` and `manage_contacts`; unknown scopes, an empty list and `manage_api_keys`
/// (never granted to a key) are 400. Needs a user access token. An API key is refused with 403.
#[utoipa::path(
    post, path = "/api/external/api-keys", operation_id = "createApiKey", tag = "api-keys",
    security(("bearerAuth" = [])),
    request_body = CreateApiKeyInput,
    responses(
        (status = 201, description = "Created", body = Envelope<ApiKeyCreatedOutput>),
        (status = 400, description = "Validation failed", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    AnyAuth(p): AnyAuth,
    ValidJson(input): ValidJson<CreateApiKeyInput>,
) -> AppResult<Response> {
    Ok(envelope::created(
        api_keys::create(&state, &p, input).await?,
    ))
}

/// List the tenant's live API keys (no secrets).
///
/// Revoked keys are left out; each key shows its name, display prefix, scopes, creation time and
/// `lastUsedAt` (updated at most once a minute). Needs a user access token. An API key is refused
/// with 403.
#[utoipa::path(
    get, path = "/api/external/api-keys", operation_id = "listApiKeys", tag = "api-keys",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Keys", body = Envelope<Vec<ApiKeyOutput>>),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
    )
)]
pub async fn list(State(state): State<AppState>, AnyAuth(p): AnyAuth) -> AppResult<Response> {
    Ok(envelope::ok(api_keys::list(&state, &p).await?))
}

/// Revoke an API key; requests using it fail with 401 from then on.
///
/// An unknown id, another tenant's key or a key already revoked is 404. Needs a user access token.
/// An API key is refused with 403.
#[utoipa::path(
    delete, path = "/api/external/api-keys/{id}", operation_id = "revokeApiKey", tag = "api-keys",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, description = "Revoked", body = MessageEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 404, description = "No such key in your tenant", body = ErrorEnvelope),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    AnyAuth(p): AnyAuth,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    api_keys::revoke(&state, &p, id).await?;
    Ok(envelope::message("API key revoked"))
}

/// The calling API key and its tenant: a quick way for an integration to check its key.
///
/// Returns the key's id, name, prefix, scopes and `lastUsedAt` (never the secret) and the tenant's
/// id and name. Needs an `X-API-Key` header: any live key may call it, whatever its scopes; a
/// bearer token is not accepted.
#[utoipa::path(
    get, path = "/api/external/me", operation_id = "getApiKeyIdentity", tag = "api-keys",
    security(("apiKeyAuth" = [])),
    responses(
        (status = 200, description = "The key and its tenant", body = Envelope<ApiKeyWhoAmIOutput>),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorEnvelope),
    )
)]
pub async fn whoami(State(state): State<AppState>, KeyAuth(p): KeyAuth) -> AppResult<Response> {
    Ok(envelope::ok(api_keys::whoami(&state, &p).await?))
}
