//! How `whatsapp-rust`'s connection events become the session's [`ProviderEvent`]s: QR codes
//! and pair codes to show, `connected` with the linked number, reconnects with the gateway's
//! backoff, and the ends a session can meet (logged out, banned, replaced, outdated), each
//! with a reason an operator can act on.

use chrono::{DateTime, Utc};
use whatsapp_rust::wacore::types::events::{ConnectFailureReason, Event};

use crate::{phone::PhoneNumber, provider::ProviderEvent};

/// What a connection knows about its link while it runs.
#[derive(Debug, Default)]
pub struct Link {
    /// The linked number: from the stored device, or from `PairSuccess`.
    pub phone: Option<PhoneNumber>,
    /// The number a pair code was asked for.
    pub pair_phone: Option<PhoneNumber>,
    /// Failed connects and drops since the last successful connect.
    pub failures: u32,
    /// Why the link last dropped or failed to connect, until a retry reports it.
    pub last_error: Option<String>,
    /// Paired in this run: WhatsApp closes the stream once after pairing (515), and the
    /// client comes straight back with its new identity.
    pub just_paired: bool,
}

impl Link {
    /// The next retry after the link dropped: its number, the gateway's backoff for it and
    /// why (the last recorded error, else `fallback`).
    pub fn next_retry(&mut self, fallback: &str) -> ProviderEvent {
        self.failures = self.failures.saturating_add(1);
        ProviderEvent::Reconnecting {
            attempt: self.failures,
            retry_in: crate::backoff::reconnect_delay(self.failures),
            reason: self
                .last_error
                .take()
                .unwrap_or_else(|| fallback.to_owned()),
        }
    }
}

/// The number of a WhatsApp user id (`15551234567` of `15551234567:3@s.whatsapp.net`).
pub fn phone_of_user(user: &str) -> Option<PhoneNumber> {
    PhoneNumber::from_whatsapp(user)
}

/// Shown when WhatsApp refuses the client version.
pub const OUTDATED: &str = "WhatsApp refused this client version as outdated: upgrade wagate, \
     or set WAGATE_WEB_VERSION to the current WhatsApp Web version";

/// Shown when another client took the session over.
pub const REPLACED: &str = "The WhatsApp Web session was opened elsewhere (stream replaced); \
     connect again to take it back";

/// Shown when no QR code was scanned in time.
pub const QR_EXHAUSTED: &str = "No QR code was scanned in time; connect again for new codes";

/// The provider event for one crate event, if it changes what the session shows. `now` dates
/// QR expiries and bans. Drops and retryable failures only record why in `link`: the
/// connection reports them as [`ProviderEvent::Reconnecting`] when it retries
/// ([`Link::next_retry`]), with the delay it really waits.
pub fn translate(event: &Event, link: &mut Link, now: DateTime<Utc>) -> Option<ProviderEvent> {
    match event {
        Event::PairingQrCode(qr) => Some(ProviderEvent::Qr {
            code: qr.code.clone(),
            expires_at: now + chrono::Duration::from_std(qr.timeout).unwrap_or_default(),
        }),
        Event::PairingCode(code) => link
            .pair_phone
            .clone()
            .map(|phone| ProviderEvent::PairCode {
                code: code.code.clone(),
                phone,
            }),
        Event::PairingQrCodesExhausted(_) => Some(ProviderEvent::Disconnected {
            reason: QR_EXHAUSTED.into(),
        }),
        Event::PairSuccess(p) => {
            link.phone = phone_of_user(&p.id.user);
            link.just_paired = true;
            None
        }
        Event::PairError(p) => Some(ProviderEvent::Failed {
            error: format!("Pairing failed: {}", p.error),
        }),
        Event::Connected(_) => {
            link.failures = 0;
            link.phone
                .clone()
                .map(|phone| ProviderEvent::Connected { phone })
        }
        Event::Disconnected(d) => retry_later(link, format!("Connection lost: {}", d.reason)),
        Event::StreamError(e) => retry_later(link, format!("WhatsApp stream error {}", e.code)),
        Event::LoggedOut(l) => Some(ProviderEvent::LoggedOut {
            reason: format!("Unlinked from the phone ({})", failure_name(l.reason)),
        }),
        Event::TemporaryBan(ban) => {
            let until = now + ban.expire;
            Some(ProviderEvent::Failed {
                error: format!(
                    "Temporarily banned by WhatsApp ({}) until {}{}",
                    ban.code,
                    until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ban.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            })
        }
        Event::StreamReplaced(_) => Some(ProviderEvent::Disconnected {
            reason: REPLACED.into(),
        }),
        Event::ClientOutdated(_) => Some(ProviderEvent::Failed {
            error: OUTDATED.into(),
        }),
        Event::ConnectFailure(f) => connect_failure(link, f.reason, f.message.as_deref()),
        _ => None,
    }
}

fn retry_later(link: &mut Link, reason: String) -> Option<ProviderEvent> {
    link.last_error = Some(reason);
    None
}

fn connect_failure(
    link: &mut Link,
    reason: ConnectFailureReason,
    message: Option<&str>,
) -> Option<ProviderEvent> {
    let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
    Some(match reason {
        r if r.is_logged_out() => ProviderEvent::LoggedOut {
            reason: format!("Unlinked from the phone ({}){detail}", failure_name(r)),
        },
        ConnectFailureReason::ClientOutdated => ProviderEvent::Failed {
            error: OUTDATED.into(),
        },
        ConnectFailureReason::TempBanned => ProviderEvent::Failed {
            error: format!("Temporarily banned by WhatsApp{detail}"),
        },
        r if r.should_reconnect() => {
            return retry_later(
                link,
                format!("WhatsApp is unavailable ({}){detail}", failure_name(r)),
            );
        }
        r => ProviderEvent::Failed {
            error: format!(
                "WhatsApp refused the connection ({}){detail}",
                failure_name(r)
            ),
        },
    })
}

/// A readable name with WhatsApp's numeric code.
fn failure_name(reason: ConnectFailureReason) -> String {
    use ConnectFailureReason as R;
    let (name, code) = match reason {
        R::Generic => ("generic failure", 400),
        R::LoggedOut => ("logged out", 401),
        R::TempBanned => ("temporarily banned", 402),
        R::AccountLocked => ("account locked", 403),
        R::UnknownLogout => ("logged out", 406),
        R::ClientOutdated => ("client outdated", 405),
        R::BadUserAgent => ("bad user agent", 409),
        R::CatExpired => ("credentials expired", 413),
        R::CatInvalid => ("credentials invalid", 414),
        R::NotFound => ("not found", 415),
        R::ClientUnknown => ("unknown client", 418),
        R::InternalServerError => ("server error", 500),
        R::Experimental => ("experimental", 501),
        R::ServiceUnavailable => ("service unavailable", 503),
        R::Unknown(code) => ("unknown", code),
    };
    format!("{name}, code {code}")
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
