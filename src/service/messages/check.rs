//! Per-field validation of send inputs: every problem is collected and reported at once.

use uuid::Uuid;

use super::PHONE_REQUIRED;
use crate::{
    error::{AppError, AppResult, FieldErrors},
    phone::PhoneNumber,
};

/// Collects per-field problems of a send.
#[derive(Default)]
pub(super) struct Check(FieldErrors);

impl Check {
    pub(super) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    pub(super) fn session(&mut self, raw: &str) -> Option<Uuid> {
        match Uuid::parse_str(raw.trim()) {
            Ok(id) => Some(id),
            Err(_) if raw.trim().is_empty() => {
                self.add("sessionId", "sessionId is required");
                None
            }
            Err(_) => {
                self.add("sessionId", "sessionId must be a session UUID");
                None
            }
        }
    }

    pub(super) fn phone(&mut self, field: &str, raw: &str) -> Option<PhoneNumber> {
        if raw.trim().is_empty() {
            self.add(field, PHONE_REQUIRED);
            return None;
        }
        match PhoneNumber::parse(raw) {
            Ok(p) => Some(p),
            Err(m) => {
                self.add(field, m);
                None
            }
        }
    }

    pub(super) fn text(
        &mut self,
        field: &str,
        raw: &str,
        required: bool,
        max: usize,
    ) -> Option<String> {
        let chars = raw.chars().count();
        if raw.trim().is_empty() {
            if required {
                self.add(
                    field,
                    format!("{field} is required (1 to {max} characters)"),
                );
            }
            None
        } else if chars > max {
            self.add(field, format!("{field} must be at most {max} characters"));
            None
        } else {
            Some(raw.to_owned())
        }
    }

    pub(super) fn finish(self) -> AppResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::fields(self.0))
        }
    }
}
