//! Registration, login, token refresh and logout, and turning credentials into a `Principal`.

use async_graphql::{InputObject, SimpleObject};
use chrono::Duration;
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::{
    auth::{Actor, Capabilities, Principal, password, token},
    domain::ids::{ApiKeyId, TenantId, UserId},
    error::{AppError, AppResult},
    repo::{self, users::NewUser},
    service::required_trimmed,
    state::AppState,
};

/// Longest password accepted (hashing cost grows with it).
const MAX_PASSWORD_BYTES: usize = 1024;
/// Role given to the user who registers a tenant.
pub const OWNER_ROLE: &str = "owner";
/// API keys' `lastUsedAt` is written at most this often per key.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// Sign-up: creates a tenant and its owner.
#[derive(Deserialize, ToSchema, InputObject, Validate)]
#[serde(rename_all = "camelCase")]
pub struct RegisterInput {
    /// Login email (unique).
    #[serde(default)]
    #[schema(required = true)]
    #[validate(
        email(message = "Valid email is required"),
        length(max = 254, message = "Email is too long")
    )]
    pub email: String,
    /// At least 8 characters.
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(
        min = 8,
        max = 1024,
        message = "Password must be at least 8 characters"
    ))]
    pub password: String,
    /// The user's display name.
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(
        min = 1,
        max = 200,
        message = "Name is required (at most 200 characters)"
    ))]
    pub name: String,
    /// Company (tenant) name; defaults to the user's name.
    #[validate(length(max = 200, message = "Company is at most 200 characters"))]
    pub company: Option<String>,
}

/// Credentials.
#[derive(Deserialize, ToSchema, InputObject, Validate)]
#[serde(rename_all = "camelCase")]
pub struct LoginInput {
    /// Login email.
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(min = 1, message = "Email is required"))]
    pub email: String,
    /// Password.
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(min = 1, message = "Password is required"))]
    pub password: String,
}

/// A refresh token, to rotate or revoke.
#[derive(Deserialize, ToSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct RefreshInput {
    /// The refresh token from login, register or a previous refresh.
    #[serde(default)]
    #[schema(required = true)]
    #[validate(length(min = 1, message = "Refresh token is required"))]
    pub refresh_token: String,
}

/// A user as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct UserOutput {
    /// User id.
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
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
}

/// A tenant as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct TenantOutput {
    /// Tenant id.
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
    /// Name.
    pub name: String,
}

/// Tokens plus who they belong to.
#[derive(Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct AuthOutput {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque token for `POST /api/auth/refresh`; single use.
    pub refresh_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: i64,
    /// The user.
    pub user: UserOutput,
    /// The user's tenant.
    pub tenant: TenantOutput,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct MeOutput {
    /// The user.
    pub user: UserOutput,
    /// The tenant.
    pub tenant: TenantOutput,
}

fn user_output(u: &entity::user::Model) -> UserOutput {
    UserOutput {
        id: u.id,
        email: u.email.clone(),
        name: u.name.clone(),
        role: u.role.clone(),
    }
}

fn tenant_output(t: &entity::tenant::Model) -> TenantOutput {
    TenantOutput {
        id: t.id,
        name: t.name.clone(),
    }
}

fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn bad_credentials() -> AppError {
    AppError::Unauthorized("Invalid email or password".into())
}

fn bad_refresh_token() -> AppError {
    AppError::Unauthorized("Invalid or expired refresh token".into())
}

fn duration(std: std::time::Duration) -> Duration {
    Duration::from_std(std).unwrap_or(Duration::MAX)
}

/// Issues an access token and a new refresh token in `family`, inside `db` (a transaction).
async fn issue_tokens(
    state: &AppState,
    db: &impl sea_orm::ConnectionTrait,
    user: &entity::user::Model,
    tenant: &entity::tenant::Model,
    family: Uuid,
) -> AppResult<AuthOutput> {
    let now = state.clock.now();
    let access_ttl = duration(state.cfg.access_token_ttl).num_seconds();
    let access = state.jwt.issue(
        state.clock.as_ref(),
        UserId(user.id),
        TenantId(tenant.id),
        access_ttl,
    )?;
    let refresh = token::random_secret();
    let expires_at = now + duration(state.cfg.refresh_token_ttl);
    repo::refresh_tokens::insert(
        db,
        TenantId(tenant.id),
        UserId(user.id),
        family,
        &token::sha256_hex(&refresh),
        expires_at,
        now,
    )
    .await?;
    Ok(AuthOutput {
        access_token: access,
        refresh_token: refresh,
        expires_in: access_ttl,
        user: user_output(user),
        tenant: tenant_output(tenant),
    })
}

/// Creates a tenant and its owner and signs the owner in.
pub async fn register(state: &AppState, mut input: RegisterInput) -> AppResult<AuthOutput> {
    input.email = normalize_email(&input.email);
    input.validate()?;
    let email = input.email.clone();
    let name = required_trimmed(
        &input.name,
        "name",
        "Name is required (at most 200 characters)",
    )?
    .to_owned();
    let tenant_name = input
        .company
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(&name)
        .to_owned();
    let password_hash = password::hash(input.password).await?;
    let now = state.clock.now();

    let txn = state.db.begin().await?;
    let tenant = repo::tenants::insert(&txn, TenantId::new(), &tenant_name, now).await?;
    let user = repo::users::insert(
        &txn,
        NewUser {
            id: UserId::new(),
            tenant_id: TenantId(tenant.id),
            email: &email,
            password_hash: &password_hash,
            name: &name,
            role: OWNER_ROLE,
        },
        now,
    )
    .await
    .map_err(|e| {
        if repo::is_unique_violation(&e) {
            AppError::Conflict("An account with this email already exists".into())
        } else {
            e.into()
        }
    })?;
    let out = issue_tokens(state, &txn, &user, &tenant, Uuid::now_v7()).await?;
    txn.commit().await?;
    tracing::info!(tenant = %tenant.id, user = %user.id, "tenant registered");
    Ok(out)
}

/// Checks credentials; the same 401 whether or not the email exists.
pub async fn login(state: &AppState, input: LoginInput) -> AppResult<AuthOutput> {
    input.validate()?;
    if input.password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::field(
            "password",
            "Password is at most 1024 characters",
        ));
    }
    let email = normalize_email(&input.email);
    let user = repo::users::find_by_email(&state.db, &email).await?;
    let ok = password::verify(
        input.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let user = match user {
        Some(u) if ok => u,
        _ => return Err(bad_credentials()),
    };
    let tenant = repo::tenants::get(&state.db, TenantId(user.tenant_id))
        .await?
        .ok_or_else(bad_credentials)?;
    let txn = state.db.begin().await?;
    let out = issue_tokens(state, &txn, &user, &tenant, Uuid::now_v7()).await?;
    txn.commit().await?;
    Ok(out)
}

/// Rotates a refresh token. A token that was already used revokes its whole family.
pub async fn refresh(state: &AppState, input: RefreshInput) -> AppResult<AuthOutput> {
    input.validate()?;
    let now = state.clock.now();
    let hash = token::sha256_hex(&input.refresh_token);
    let txn = state.db.begin().await?;
    let row = repo::refresh_tokens::find_by_hash(&txn, &hash)
        .await?
        .ok_or_else(bad_refresh_token)?;
    let tenant_id = TenantId(row.tenant_id);
    if row.revoked_at.is_some() {
        let n = repo::refresh_tokens::revoke_family(&txn, tenant_id, row.family_id, now).await?;
        txn.commit().await?;
        tracing::warn!(tenant = %tenant_id, revoked = n, "refresh token reuse detected; family revoked");
        return Err(bad_refresh_token());
    }
    if row.expires_at <= now {
        return Err(bad_refresh_token());
    }
    if !repo::refresh_tokens::revoke(&txn, tenant_id, row.id, now).await? {
        // Another request used this token at the same moment: treat it as reuse.
        repo::refresh_tokens::revoke_family(&txn, tenant_id, row.family_id, now).await?;
        txn.commit().await?;
        return Err(bad_refresh_token());
    }
    let user = repo::users::get(&txn, tenant_id, UserId(row.user_id))
        .await?
        .ok_or_else(bad_refresh_token)?;
    let tenant = repo::tenants::get(&txn, tenant_id)
        .await?
        .ok_or_else(bad_refresh_token)?;
    let out = issue_tokens(state, &txn, &user, &tenant, row.family_id).await?;
    txn.commit().await?;
    Ok(out)
}

/// Revokes a refresh token. Idempotent: an unknown or already revoked token is not an error.
pub async fn logout(state: &AppState, input: RefreshInput) -> AppResult<()> {
    input.validate()?;
    let now = state.clock.now();
    let hash = token::sha256_hex(&input.refresh_token);
    if let Some(row) = repo::refresh_tokens::find_by_hash(&state.db, &hash).await? {
        repo::refresh_tokens::revoke(&state.db, TenantId(row.tenant_id), row.id, now).await?;
    }
    Ok(())
}

/// The calling user and their tenant.
pub async fn me(state: &AppState, principal: &Principal) -> AppResult<MeOutput> {
    let user_id = principal.user_id().ok_or_else(|| {
        AppError::Forbidden("This endpoint needs a user access token, not an API key".into())
    })?;
    let user = repo::users::get(&state.db, principal.tenant_id, user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("User no longer exists".into()))?;
    let tenant = repo::tenants::get(&state.db, principal.tenant_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("Tenant no longer exists".into()))?;
    Ok(MeOutput {
        user: user_output(&user),
        tenant: tenant_output(&tenant),
    })
}

/// Verifies a bearer access token.
pub fn authenticate_bearer(state: &AppState, token: &str) -> AppResult<Principal> {
    let claims = state.jwt.verify(state.clock.as_ref(), token)?;
    Ok(Principal {
        tenant_id: TenantId(claims.tid),
        actor: Actor::User(UserId(claims.sub)),
        expires_at: chrono::DateTime::from_timestamp(claims.exp, 0),
        capabilities: Capabilities::all(),
    })
}

/// Verifies an API key and records its use.
pub async fn authenticate_api_key(state: &AppState, key: &str) -> AppResult<Principal> {
    let invalid = || AppError::Unauthorized("Invalid or revoked API key".into());
    if !key.starts_with(token::API_KEY_PREFIX) {
        return Err(invalid());
    }
    let row = repo::api_keys::find_active_by_hash(&state.db, &token::sha256_hex(key))
        .await?
        .ok_or_else(invalid)?;
    let now = state.clock.now();
    let tenant = TenantId(row.tenant_id);
    let id = ApiKeyId(row.id);
    let stale = row
        .last_used_at
        .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_GRANULARITY_SECS);
    if stale && let Err(e) = repo::api_keys::touch_last_used(&state.db, tenant, id, now).await {
        // Bookkeeping only: the key is valid, so the request goes on.
        tracing::warn!(api_key = %id, error = %e, "could not record API key use");
    }
    Ok(Principal {
        tenant_id: tenant,
        actor: Actor::ApiKey(id),
        expires_at: None,
        capabilities: Capabilities::from_stored(&row.scopes),
    })
}

/// Resolves whichever credentials were presented (bearer wins over an API key);
/// `Ok(None)` when there were none.
pub async fn authenticate(
    state: &AppState,
    authorization: Option<&str>,
    api_key: Option<&str>,
) -> AppResult<Option<Principal>> {
    if let Some(value) = authorization {
        let token = crate::auth::parse_bearer(value)?;
        return authenticate_bearer(state, token).map(Some);
    }
    if let Some(key) = api_key {
        return authenticate_api_key(state, key.trim()).await.map(Some);
    }
    Ok(None)
}

/// Whether a principal authenticated earlier may still act (long-lived connections check this):
/// its access token has not expired and its API key has not been revoked.
pub async fn still_valid(state: &AppState, principal: &Principal) -> AppResult<bool> {
    if principal
        .expires_at
        .is_some_and(|exp| exp <= state.clock.now())
    {
        return Ok(false);
    }
    match principal.actor {
        Actor::ApiKey(id) => Ok(repo::api_keys::get(&state.db, principal.tenant_id, id)
            .await?
            .is_some_and(|k| k.revoked_at.is_none())),
        Actor::User(_) => Ok(true),
    }
}
