//! Field rules of a contact, shared by create, update, bulk and CSV import.

use chrono::{DateTime, Utc};
use entity::contact;
use uuid::Uuid;
use validator::ValidateEmail;

use super::{Family, NewContact, UpdateContactInput};
use crate::{domain::ids::TenantId, error::FieldErrors, phone::PhoneNumber};

/// Longest name.
pub const MAX_NAME: usize = 255;
/// Longest tag or label.
pub const MAX_TAG: usize = 64;
/// Most tags (or labels) on one contact.
pub const MAX_TAGS: usize = 50;
/// Largest `params` object, serialised.
pub const MAX_PARAMS: usize = 16 * 1024;
/// Longest source.
pub const MAX_SOURCE: usize = 64;

/// Why a missing phone is rejected, per API.
pub fn phone_required(family: Family) -> &'static str {
    match family {
        Family::Contacts => crate::service::check::PHONE_REQUIRED,
        Family::Vendor => "Phone number (userNumber) is required",
    }
}

/// True for a 24-hex-character vendor contact id.
pub fn is_vendor_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The vendor contact id of a new contact: 12 bytes as 24 hex characters, time-ordered like
/// the vendor's own ids (the UUIDv7's 48-bit millisecond time and 16 bits that follow it, then
/// 32 random bits), so new ids land at the end of their index instead of all over it.
fn vendor_id(id: Uuid) -> String {
    let b = id.as_bytes();
    let random: [u8; 4] = rand::random();
    b[..8]
        .iter()
        .chain(random.iter())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The text search matches: lower-cased name and email, and the number's digits.
pub fn search_text(phone: &str, name: Option<&str>, email: Option<&str>) -> String {
    format!(
        "{} {} {}",
        name.unwrap_or("").to_lowercase(),
        email.unwrap_or("").to_lowercase(),
        phone.trim_start_matches('+')
    )
}

struct Rules<'a>(&'a mut FieldErrors);

impl Rules<'_> {
    fn add(&mut self, field: &str, msg: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| msg.into());
    }

    fn phone(&mut self, field: &str, raw: Option<&str>, family: Family) -> Option<PhoneNumber> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            None => {
                self.add(field, phone_required(family));
                None
            }
            Some(s) => match PhoneNumber::parse(s) {
                Ok(p) => Some(p),
                Err(_) => {
                    self.add(
                        field,
                        format!("{field} must be a valid international phone number"),
                    );
                    None
                }
            },
        }
    }

    fn text(&mut self, field: &str, raw: Option<String>, max: usize) -> Option<String> {
        let v = raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
        if v.contains('\0') {
            self.add(field, format!("{field} must not contain NUL characters"));
            return None;
        }
        if v.chars().count() > max {
            self.add(field, format!("{field} must be at most {max} characters"));
            return None;
        }
        Some(v)
    }

    fn email(&mut self, raw: Option<String>) -> Option<String> {
        let v = self.text("email", raw, 254)?;
        if v.validate_email() {
            Some(v)
        } else {
            self.add("email", "email must be a valid email address");
            None
        }
    }

    fn country(&mut self, field: &str, raw: Option<String>) -> Option<String> {
        let v = raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
        if v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()) {
            Some(v.to_ascii_uppercase())
        } else {
            self.add(
                field,
                format!("{field} must be an ISO 3166-1 alpha-2 code such as AE or US"),
            );
            None
        }
    }

    fn list(&mut self, field: &str, raw: Option<Vec<String>>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in raw.unwrap_or_default() {
            let t = t.trim();
            if t.is_empty() || out.iter().any(|o| o == t) {
                continue;
            }
            if t.contains('\0') {
                self.add(field, format!("{field} must not contain NUL characters"));
                continue;
            }
            if t.chars().count() > MAX_TAG {
                self.add(
                    field,
                    format!("each of {field} must be at most {MAX_TAG} characters"),
                );
                continue;
            }
            out.push(t.to_owned());
        }
        if out.len() > MAX_TAGS {
            self.add(field, format!("at most {MAX_TAGS} {field} per contact"));
        }
        out
    }

    fn params(&mut self, raw: Option<serde_json::Value>) -> String {
        match raw {
            None | Some(serde_json::Value::Null) => "{}".into(),
            Some(v @ serde_json::Value::Object(_)) => {
                let s = v.to_string();
                if s.len() > MAX_PARAMS {
                    self.add(
                        "params",
                        format!("params must be at most {MAX_PARAMS} bytes"),
                    );
                }
                s
            }
            Some(_) => {
                self.add("params", "params must be a JSON object");
                "{}".into()
            }
        }
    }
}

fn list_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Validates a new contact into a row and its tags; every problem at once.
pub fn new_row(
    tenant: TenantId,
    input: NewContact,
    family: Family,
    default_source: &str,
    now: DateTime<Utc>,
) -> Result<(contact::Model, Vec<String>), FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut r = Rules(&mut errors);
    let phone = r.phone(family.phone_field(), input.phone.as_deref(), family);
    let name = r.text("name", input.name, MAX_NAME);
    let email = r.email(input.email);
    let country = r.country("countryCode", input.country_code);
    let tags = r.list("tags", input.tags);
    let labels = r.list("labels", input.labels);
    let params = r.params(input.params);
    let source = r
        .text("source", input.source, MAX_SOURCE)
        .unwrap_or_else(|| default_source.to_owned());
    let Some(phone) = phone.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    let id = Uuid::now_v7();
    let row = contact::Model {
        id,
        tenant_id: tenant.uuid(),
        vendor_contact_id: vendor_id(id),
        search: search_text(phone.e164(), name.as_deref(), email.as_deref()),
        country_code: country.or_else(|| phone.country().map(str::to_owned)),
        phone: phone.e164().to_owned(),
        name,
        email,
        tags: list_json(&tags),
        labels: list_json(&labels),
        params,
        source,
        opt_in: input.opt_in.unwrap_or(false),
        is_blocked: input.is_blocked.unwrap_or(false),
        last_message_at: None,
        conversation_count: 0,
        created_at: now,
        updated_at: now,
    };
    Ok((row, tags))
}

/// Applies a partial update to `row`; the new tags when they change.
pub fn apply(
    mut row: contact::Model,
    input: UpdateContactInput,
    family: Family,
    now: DateTime<Utc>,
) -> Result<(contact::Model, Option<Vec<String>>), FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut r = Rules(&mut errors);
    let country_field = match family {
        Family::Contacts => "countryCode",
        Family::Vendor => "country_code",
    };
    let phone = input
        .phone
        .as_deref()
        .map(|p| r.phone(family.phone_field(), Some(p), family));
    if let Some(name) = input.name {
        row.name = r.text("name", name, MAX_NAME);
    }
    if let Some(email) = input.email {
        row.email = r.email(email);
    }
    let country = input.country_code.map(|c| r.country(country_field, c));
    let tags = input.tags.map(|t| r.list("tags", Some(t)));
    if let Some(labels) = input.labels {
        row.labels = list_json(&r.list("labels", Some(labels)));
    }
    if let Some(params) = input.params {
        row.params = r.params(Some(params));
    }
    if let Some(source) = input.source {
        match r.text("source", Some(source), MAX_SOURCE) {
            Some(s) => row.source = s,
            None => r.add("source", "source must not be empty"),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let parsed = match phone {
        Some(Some(p)) => {
            row.phone = p.e164().to_owned();
            Some(p)
        }
        _ => None,
    };
    match country {
        Some(Some(c)) => row.country_code = Some(c),
        // `null` (or a new number without an explicit country) derives it again.
        Some(None) => {
            row.country_code = PhoneNumber::parse(&row.phone)
                .ok()
                .and_then(|p| p.country().map(str::to_owned))
        }
        None => {
            if let Some(p) = parsed {
                row.country_code = p.country().map(str::to_owned);
            }
        }
    }
    if let Some(t) = &tags {
        row.tags = list_json(t);
    }
    if let Some(v) = input.opt_in {
        row.opt_in = v;
    }
    if let Some(v) = input.is_blocked {
        row.is_blocked = v;
    }
    row.search = search_text(&row.phone, row.name.as_deref(), row.email.as_deref());
    row.updated_at = now;
    Ok((row, tags))
}
