//! Phone numbers, normalised to E.164 with the `phonenumber` crate (libphonenumber metadata).

use std::fmt;

/// A valid phone number in E.164 (`+919876543210`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    country: Option<String>,
}

/// Why a string is not a phone number.
pub const INVALID_PHONE: &str = "Valid phone number is required";

impl PhoneNumber {
    /// Parses international input: `919876543210`, `+91 98765 43210`, `+1 (555) 010-0000`.
    /// A missing `+` is assumed (WhatsApp numbers are always international).
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.len() > 32 {
            return Err(INVALID_PHONE);
        }
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
        {
            return Err(INVALID_PHONE);
        }
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        let parsed = phonenumber::parse(None, format!("+{digits}")).map_err(|_| INVALID_PHONE)?;
        if !parsed.is_valid() {
            return Err(INVALID_PHONE);
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        let country = parsed.country().id().map(|id| id.as_ref().to_owned());
        Ok(Self { e164, country })
    }

    /// A number WhatsApp itself reports (the user part of an account id): trusted as it is,
    /// 6 to 15 digits, even where the phone-number metadata does not know its range yet (a
    /// linked account must not be refused for that).
    pub fn from_whatsapp(user: &str) -> Option<Self> {
        if !(6..=15).contains(&user.len()) || !user.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if let Ok(p) = Self::parse(user) {
            return Some(p);
        }
        let country = phonenumber::parse(None, format!("+{user}"))
            .ok()
            .and_then(|p| p.country().id().map(|id| id.as_ref().to_owned()));
        Some(Self {
            e164: format!("+{user}"),
            country,
        })
    }

    /// `+919876543210`.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// `919876543210`: the form the REST contract and WhatsApp JIDs use.
    pub fn digits(&self) -> &str {
        self.e164.trim_start_matches('+')
    }

    /// The WhatsApp JID of the number: `919876543210@s.whatsapp.net`.
    pub fn jid(&self) -> String {
        format!("{}@s.whatsapp.net", self.digits())
    }

    /// ISO 3166 country of the number (`IN`), when the metadata names one.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
}

/// Loads the phone-number metadata now (it is otherwise loaded by the first parse, which then
/// takes noticeably longer than the rest).
pub fn warm_up() {
    let _ = PhoneNumber::parse("+14155550123");
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_common_forms() {
        for input in [
            "919876543210",
            "+91 98765 43210",
            "+91-98765-43210",
            " 91 (98765) 43210 ",
        ] {
            let p = PhoneNumber::parse(input).unwrap();
            assert_eq!(p.e164(), "+919876543210", "{input}");
            assert_eq!(p.digits(), "919876543210");
            assert_eq!(p.country(), Some("IN"));
        }
        assert_eq!(
            PhoneNumber::parse("+1 650 253 0000").unwrap().country(),
            Some("US")
        );
    }

    #[test]
    fn rejects_non_numbers() {
        for input in ["abc", "", "12", "+91 98765", "919876543210abc", "++--"] {
            assert!(PhoneNumber::parse(input).is_err(), "{input}");
        }
    }
}
