//! Which numbers are on WhatsApp, asked with WhatsApp's usync query and remembered for a
//! while: a day for numbers that have an account, ten minutes for numbers that do not (they
//! may join). Sends check their recipient here first, so a number without WhatsApp fails
//! the message at once instead of being retried.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use whatsapp_rust::{Client, Jid};

use super::connection::unavailable;
use crate::{
    phone::PhoneNumber,
    provider::{NumberCheck, ProviderError},
};

/// How long a number with an account is remembered.
const KNOWN_FOR: Duration = Duration::from_secs(24 * 3600);
/// How long a number without one is remembered.
const UNKNOWN_FOR: Duration = Duration::from_secs(600);
/// Entries kept at most; the cache starts over beyond that.
const MAX_ENTRIES: usize = 10_000;

/// A session's recent answers, by E.164 number.
#[derive(Default)]
pub struct Numbers {
    cache: Mutex<HashMap<String, (NumberCheck, Instant)>>,
}

impl Numbers {
    /// Whether `phone` is on WhatsApp: from the cache, else asked through `client`.
    pub async fn check(
        &self,
        client: &Client,
        phone: &PhoneNumber,
    ) -> Result<NumberCheck, ProviderError> {
        if let Some(hit) = self.cached(phone) {
            return Ok(hit);
        }
        let found = client
            .contacts()
            .is_on_whatsapp(&[Jid::pn(phone.digits())])
            .await
            .map_err(|e| unavailable("Checking the number with WhatsApp", e))?;
        let check = match found.into_iter().find(|r| r.is_registered) {
            Some(r) => NumberCheck {
                on_whatsapp: true,
                jid: Some(r.pn_jid.unwrap_or(r.jid).to_non_ad().to_string()),
            },
            None => NumberCheck {
                on_whatsapp: false,
                jid: None,
            },
        };
        self.remember(phone, check.clone());
        Ok(check)
    }

    fn cached(&self, phone: &PhoneNumber) -> Option<NumberCheck> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (check, at) = cache.get(phone.e164())?;
        let ttl = if check.on_whatsapp {
            KNOWN_FOR
        } else {
            UNKNOWN_FOR
        };
        (at.elapsed() < ttl).then(|| check.clone())
    }

    fn remember(&self, phone: &PhoneNumber, check: NumberCheck) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(phone.e164().to_owned(), (check, Instant::now()));
    }
}
