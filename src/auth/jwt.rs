//! HS256 access tokens with `sub` (user), `tid` (tenant), `iat` and `exp`.
//!
//! Expiry is checked against the application clock (not the library's), so tests can move time.

use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
    sync::Arc,
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    clock::Clock,
    domain::ids::{TenantId, UserId},
    error::{AppError, AppResult},
};

/// Name of the generated secret file in the data directory.
pub const SECRET_FILE: &str = "jwt_secret";

/// Access-token claims.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Tenant id.
    pub tid: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// Signing and verification keys. Debug never shows the secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys([REDACTED])")
    }
}

impl JwtKeys {
    /// Keys from a secret.
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        // exp is checked against the application clock in `verify`.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["sub", "exp"]);
        Self {
            encoding: Arc::new(EncodingKey::from_secret(bytes)),
            decoding: Arc::new(DecodingKey::from_secret(bytes)),
            validation: Arc::new(validation),
        }
    }

    /// Issues an access token valid for `ttl_secs`.
    pub fn issue(
        &self,
        clock: &dyn Clock,
        user: UserId,
        tenant: TenantId,
        ttl_secs: i64,
    ) -> AppResult<String> {
        let iat = clock.now().timestamp();
        let claims = Claims {
            sub: user.uuid(),
            tid: tenant.uuid(),
            iat,
            exp: iat + ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// Verifies signature, algorithm and expiry. Every failure is the same 401.
    pub fn verify(&self, clock: &dyn Clock, token: &str) -> AppResult<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| invalid_token())?;
        if data.claims.exp <= clock.now().timestamp() {
            return Err(AppError::Unauthorized("Access token has expired".into()));
        }
        Ok(data.claims)
    }
}

fn invalid_token() -> AppError {
    AppError::Unauthorized("Invalid access token".into())
}

/// The configured secret, or the one persisted in the data dir (created with mode 0600 on
/// first start), so tokens survive restarts.
pub fn load_or_create_secret(
    configured: Option<&SecretString>,
    data_dir: &Path,
) -> anyhow::Result<SecretString> {
    if let Some(s) = configured {
        return Ok(s.clone());
    }
    let path = data_dir.join(SECRET_FILE);
    match fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= crate::config::MIN_JWT_SECRET_LEN => {
            return Ok(SecretString::from(s.trim().to_owned()));
        }
        Ok(_) => anyhow::bail!(
            "{} is too short; delete it to generate a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    let secret = format!(
        "{}{}",
        super::token::random_secret(),
        super::token::random_secret()
    );
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(SecretString::from(secret))
}
