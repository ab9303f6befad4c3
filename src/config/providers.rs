//! Which providers this gateway offers (`WAGATE_PROVIDERS`) and the default one for new
//! sessions (`WAGATE_PROVIDER`).

use super::{ConfigError, err, non_empty};
use crate::domain::ProviderKind;

/// Parses one provider name; `web` and `cloud` are refused until their transports land.
fn kind(key: &'static str, name: &str) -> Result<ProviderKind, ConfigError> {
    match name {
        "sandbox" => Ok(ProviderKind::Sandbox),
        "web" | "cloud" => Err(err(
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
