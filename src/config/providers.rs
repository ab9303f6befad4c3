//! Which providers this gateway offers (`WAGATE_PROVIDERS`) and the default one for new
//! sessions (`WAGATE_PROVIDER`).

use super::{ConfigError, err, non_empty};
use crate::{
    domain::ProviderKind,
    provider::web::{WebConfig, parse_version},
};

/// Parses one provider name; `cloud` is refused until its transport lands.
fn kind(key: &'static str, name: &str) -> Result<ProviderKind, ConfigError> {
    match name {
        "sandbox" => Ok(ProviderKind::Sandbox),
        "web" => Ok(ProviderKind::Web),
        "cloud" => Err(err(
            key,
            format!("provider '{name}' is not available in this build yet; use sandbox"),
        )),
        other => Err(err(key, format!("'{other}' is not sandbox, web or cloud"))),
    }
}

/// The enabled providers (each once, in the order given) and the default, which must be one
/// of them. Without `WAGATE_PROVIDERS` only the default is enabled.
pub(super) fn parse(
    enabled: Option<String>,
    default: Option<String>,
) -> Result<(Vec<ProviderKind>, ProviderKind), ConfigError> {
    let default = match non_empty(default) {
        Some(name) => kind("WAGATE_PROVIDER", &name)?,
        None => ProviderKind::Sandbox,
    };
    let Some(list) = non_empty(enabled) else {
        return Ok((vec![default], default));
    };
    let mut kinds = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let k = kind("WAGATE_PROVIDERS", name)?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if kinds.is_empty() {
        return Err(err("WAGATE_PROVIDERS", "name at least one provider"));
    }
    if !kinds.contains(&default) {
        return Err(err(
            "WAGATE_PROVIDER",
            format!(
                "the default provider '{}' is not in WAGATE_PROVIDERS",
                default.as_str()
            ),
        ));
    }
    Ok((kinds, default))
}

/// The `web` provider's settings: WebSocket URL, pinned version, device name.
pub(super) fn parse_web(
    ws_url: Option<String>,
    version: Option<String>,
    device_name: Option<String>,
) -> Result<WebConfig, ConfigError> {
    let mut web = WebConfig::default();
    if let Some(url) = non_empty(ws_url) {
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| err("WAGATE_WEB_WS_URL", format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "ws" | "wss") {
            return Err(err("WAGATE_WEB_WS_URL", "must be a ws:// or wss:// URL"));
        }
        web.ws_url = url;
    }
    if let Some(v) = non_empty(version) {
        web.version = Some(parse_version(&v).ok_or_else(|| {
            err(
                "WAGATE_WEB_VERSION",
                format!("'{v}' is not a version like 2.3000.1023456789"),
            )
        })?);
    }
    if let Some(name) = non_empty(device_name) {
        if name.chars().count() > 50 || name.chars().any(char::is_control) {
            return Err(err(
                "WAGATE_WEB_DEVICE_NAME",
                "use at most 50 printable characters",
            ));
        }
        web.device_name = name;
    }
    Ok(web)
}

/// A build with the `fake-whatsapp` test feature skips the check of WhatsApp's certificate
/// chain, so it may only talk to a WhatsApp Web server on this machine.
pub(super) fn check_test_build(web: &WebConfig, kinds: &[ProviderKind]) -> Result<(), ConfigError> {
    if !cfg!(feature = "fake-whatsapp") || !kinds.contains(&ProviderKind::Web) {
        return Ok(());
    }
    let local = reqwest::Url::parse(&web.ws_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
        .is_some_and(|h| {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    if local {
        Ok(())
    } else {
        Err(err(
            "WAGATE_WEB_WS_URL",
            "this is a test build (feature fake-whatsapp) that does not check WhatsApp's \
             certificates; it only talks to a server on this machine",
        ))
    }
}
