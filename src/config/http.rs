//! HTTP conventions: which browser origins may call the API.

use axum::http::HeaderValue;

use super::{ConfigArgs, ConfigError, err, non_empty};

/// Browser origins allowed to call the API cross-origin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin access (no CORS headers at all): the default.
    #[default]
    None,
    /// Any origin (`*`), only when configured explicitly.
    Any,
    /// These origins, e.g. `https://app.example.com`.
    List(Vec<HeaderValue>),
}

/// HTTP settings.
#[derive(Clone, Debug, Default)]
pub struct HttpConfig {
    /// `WAGATE_CORS_ORIGINS`.
    pub cors_origins: CorsOrigins,
}

/// Reads the HTTP keys.
pub(super) fn parse(a: &ConfigArgs) -> Result<HttpConfig, ConfigError> {
    const KEY: &str = "WAGATE_CORS_ORIGINS";
    let cors_origins = match non_empty(a.cors_origins.clone()) {
        None => CorsOrigins::None,
        Some(v) if v == "*" => CorsOrigins::Any,
        Some(v) => {
            let mut list = Vec::new();
            for origin in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.trim_end_matches('/').contains(['?', '#'])
                    && origin.matches('/').count() == 2;
                if !ok {
                    return Err(err(
                        KEY,
                        format!("'{origin}' is not an origin like https://app.example.com"),
                    ));
                }
                let value = HeaderValue::from_str(origin)
                    .map_err(|_| err(KEY, format!("'{origin}' is not a valid origin")))?;
                list.push(value);
            }
            CorsOrigins::List(list)
        }
    };
    Ok(HttpConfig { cors_origins })
}
