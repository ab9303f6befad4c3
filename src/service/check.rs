//! Per-field validation: every problem of an input is collected and reported at once.

use uuid::Uuid;

use crate::{
    error::{AppError, AppResult, FieldErrors},
    phone::PhoneNumber,
    provider::Recipient,
};

/// Why a phone field is rejected when it is empty.
pub const PHONE_REQUIRED: &str = "Valid phone number is required";

/// Collects per-field problems of an input.
#[derive(Default)]
pub(crate) struct Check(FieldErrors);

impl Check {
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    pub(crate) fn session(&mut self, raw: &str) -> Option<Uuid> {
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

    /// An optional `quotedMessageId`: a message UUID when given.
    pub(crate) fn quoted(&mut self, raw: Option<&str>) -> Option<Uuid> {
        let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
        match Uuid::parse_str(raw) {
            Ok(id) => Some(id),
            Err(_) => {
                self.add("quotedMessageId", "quotedMessageId must be a message UUID");
                None
            }
        }
    }

    /// A recipient: a phone number, or a group jid (`…@g.us`).
    pub(crate) fn recipient(&mut self, field: &str, raw: &str) -> Option<Recipient> {
        if raw.trim().ends_with(Recipient::GROUP_SERVER) {
            let group = Recipient::group(raw);
            if group.is_none() {
                self.add(
                    field,
                    "A group must be given as its id, e.g. 120363025246125486@g.us",
                );
            }
            return group;
        }
        self.phone(field, raw).map(Recipient::Phone)
    }

    pub(crate) fn phone(&mut self, field: &str, raw: &str) -> Option<PhoneNumber> {
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

    pub(crate) fn text(
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
        } else if raw.contains('\0') {
            self.add(field, format!("{field} must not contain NUL characters"));
            None
        } else {
            Some(raw.to_owned())
        }
    }

    pub(crate) fn finish(self) -> AppResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::fields(self.0))
        }
    }
}
