//! Validation of webhook inputs: every problem reported at once, per field.

use uuid::Uuid;

use super::{CreateWebhookInput, EVENT_TYPES, UpdateWebhookInput, target};
use crate::{
    error::{AppError, AppResult, FieldErrors},
    repo::webhooks::EndpointChange,
};

/// Longest description.
const MAX_DESCRIPTION: usize = 500;
/// Most sessions in one filter.
const MAX_SESSIONS: usize = 1000;

/// Validated create fields, as stored.
pub(super) struct Valid {
    pub url: String,
    pub description: Option<String>,
    pub events: Option<String>,
    pub session_ids: Option<String>,
}

async fn url(errors: &mut FieldErrors, raw: &str, allow_private: bool) -> Option<String> {
    match target::check_url(raw, allow_private).await {
        Ok(u) => Some(u.to_string()),
        Err(m) => {
            errors.insert("url".into(), m);
            None
        }
    }
}

/// `None` means every event.
fn events(errors: &mut FieldErrors, list: Option<&[String]>) -> Option<String> {
    let list = list?;
    let mut out: Vec<&str> = Vec::new();
    for raw in list {
        let t = raw.trim();
        if t == "*" {
            return None;
        }
        match EVENT_TYPES.iter().find(|k| k.eq_ignore_ascii_case(t)) {
            Some(k) => out.push(k),
            None => {
                errors.insert(
                    "events".into(),
                    format!(
                        "Unknown event type '{t}'; use \"*\" or any of: {}",
                        EVENT_TYPES.join(", ")
                    ),
                );
                return None;
            }
        }
    }
    if out.is_empty() {
        errors.insert(
            "events".into(),
            "events must list at least one event type, or \"*\" for all".into(),
        );
        return None;
    }
    out.sort_unstable();
    out.dedup();
    serde_json::to_string(&out).ok()
}

/// `None` means every session.
fn sessions(errors: &mut FieldErrors, list: Option<&[String]>) -> Option<String> {
    let list = list.filter(|l| !l.is_empty())?;
    if list.len() > MAX_SESSIONS {
        errors.insert(
            "sessionIds".into(),
            format!("At most {MAX_SESSIONS} sessions"),
        );
        return None;
    }
    let mut ids = Vec::with_capacity(list.len());
    for raw in list {
        match Uuid::parse_str(raw.trim()) {
            Ok(id) => ids.push(id),
            Err(_) => {
                errors.insert(
                    "sessionIds".into(),
                    format!("'{raw}' is not a session UUID"),
                );
                return None;
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    serde_json::to_string(&ids).ok()
}

fn description(errors: &mut FieldErrors, raw: Option<&str>) -> Option<String> {
    let t = raw.map(str::trim).filter(|s| !s.is_empty())?;
    if t.chars().count() > MAX_DESCRIPTION {
        errors.insert(
            "description".into(),
            format!("description must be at most {MAX_DESCRIPTION} characters"),
        );
        return None;
    }
    if t.contains('\0') {
        errors.insert(
            "description".into(),
            "description must not contain NUL characters".into(),
        );
        return None;
    }
    Some(t.to_owned())
}

fn finish(errors: FieldErrors) -> AppResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::fields(errors))
    }
}

/// Validates a new endpoint.
pub(super) async fn create(input: &CreateWebhookInput, allow_private: bool) -> AppResult<Valid> {
    let mut errors = FieldErrors::new();
    let url = url(&mut errors, &input.url, allow_private).await;
    let events = events(&mut errors, input.events.as_deref());
    let session_ids = sessions(&mut errors, input.session_ids.as_deref());
    let description = description(&mut errors, input.description.as_deref());
    finish(errors)?;
    Ok(Valid {
        url: url.unwrap_or_default(),
        description,
        events,
        session_ids,
    })
}

/// Validates a partial update into the columns it changes.
pub(super) async fn change(
    input: UpdateWebhookInput,
    allow_private: bool,
) -> AppResult<EndpointChange> {
    let mut errors = FieldErrors::new();
    let mut c = EndpointChange {
        enabled: input.enabled,
        ..EndpointChange::default()
    };
    if let Some(raw) = &input.url {
        c.url = url(&mut errors, raw, allow_private).await;
    }
    if let Some(list) = &input.events {
        c.events = Some(events(&mut errors, Some(list)));
    }
    if let Some(list) = &input.session_ids {
        c.session_ids = Some(sessions(&mut errors, list.as_deref()));
    }
    if let Some(d) = &input.description {
        c.description = Some(description(&mut errors, d.as_deref()));
    }
    finish(errors)?;
    Ok(c)
}
