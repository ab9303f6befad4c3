//! Authentication primitives: who is calling (`Principal`), passwords, JWTs and opaque tokens.

pub mod jwt;
pub mod password;
pub mod scope;
pub mod token;

pub use scope::{Capabilities, Capability};

use crate::domain::ids::{ApiKeyId, TenantId, UserId};

/// Who is acting on a request: always scoped to one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every query of the request is scoped to.
    pub tenant_id: TenantId,
    /// The user or API key behind the request.
    pub actor: Actor,
    /// When the credential stops being valid (access tokens; API keys last until revoked).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What the credential may do: everything for a user, the key's scopes for an API key.
    pub capabilities: Capabilities,
}

/// The authenticated party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A dashboard user, authenticated by JWT.
    User(UserId),
    /// A server-to-server API key.
    ApiKey(ApiKeyId),
}

impl Principal {
    /// The user id, when the caller is a user.
    pub fn user_id(&self) -> Option<UserId> {
        match self.actor {
            Actor::User(u) => Some(u),
            Actor::ApiKey(_) => None,
        }
    }

    /// `Ok` when the principal holds `cap`; 403 `FORBIDDEN` otherwise. Every service entry
    /// point calls this first, so REST and GraphQL apply one rule.
    pub fn require(&self, cap: Capability) -> Result<(), AppError> {
        scope::check(self.capabilities, cap)
    }
}

use crate::error::AppError;

/// Extracts the token from an `Authorization: Bearer <token>` value.
pub fn parse_bearer(value: &str) -> Result<&str, AppError> {
    match value.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AppError::Unauthorized(
            "Authorization header must be 'Bearer <accessToken>'".into(),
        )),
    }
}
