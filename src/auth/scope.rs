//! Capabilities: what a principal may do. Checked inside service functions, so REST, GraphQL
//! and any later adapter apply one rule. A user's access token holds every capability; an API
//! key holds the scopes chosen when it was created.

use std::fmt;

use crate::error::{AppError, AppResult};

/// One permission. Its `name()` is the scope string clients send and see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Create, connect, disconnect, log out, rename and delete sessions (and drive the sandbox).
    ManageSessions,
    /// List sessions, read their status and QR codes, watch session events.
    ReadSessions,
    /// Send messages of every kind.
    SendMessages,
    /// List and read messages and their media, watch message events.
    ReadMessages,
    /// Everything about contacts, groups, tags, imports and exports.
    ManageContacts,
    /// Create, change, delete and test webhook endpoints and read their delivery logs.
    ManageWebhooks,
    /// See a webhook signing secret (reading it, creating an endpoint, rotating it).
    ReadWebhookSecrets,
    /// Create, list and revoke API keys. Never granted to an API key.
    ManageApiKeys,
}

impl Capability {
    /// Every capability, in documentation order.
    pub const ALL: [Capability; 8] = [
        Capability::ManageSessions,
        Capability::ReadSessions,
        Capability::SendMessages,
        Capability::ReadMessages,
        Capability::ManageContacts,
        Capability::ManageWebhooks,
        Capability::ReadWebhookSecrets,
        Capability::ManageApiKeys,
    ];

    /// The scope string, e.g. `send_messages`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::ManageSessions => "manage_sessions",
            Capability::ReadSessions => "read_sessions",
            Capability::SendMessages => "send_messages",
            Capability::ReadMessages => "read_messages",
            Capability::ManageContacts => "manage_contacts",
            Capability::ManageWebhooks => "manage_webhooks",
            Capability::ReadWebhookSecrets => "read_webhook_secrets",
            Capability::ManageApiKeys => "manage_api_keys",
        }
    }

    /// Parses a scope string.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(u16);

impl Capabilities {
    /// No capability.
    pub const NONE: Capabilities = Capabilities(0);

    /// Every capability (a user's access token).
    pub fn all() -> Self {
        Self::of(&Capability::ALL)
    }

    /// The scopes a new API key gets when none are asked for (and that keys made before
    /// scopes existed were given).
    pub fn default_key() -> Self {
        Self::of(&[
            Capability::SendMessages,
            Capability::ReadMessages,
            Capability::ReadSessions,
            Capability::ManageContacts,
        ])
    }

    /// The set of the given capabilities.
    pub fn of(caps: &[Capability]) -> Self {
        Capabilities(caps.iter().fold(0, |acc, c| acc | c.bit()))
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    /// The members, in documentation order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }

    /// The scope strings, in documentation order.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|c| c.name().to_owned()).collect()
    }

    /// The stored form: scope names separated by spaces (as OAuth writes scopes).
    pub fn to_stored(self) -> String {
        self.names().join(" ")
    }

    /// Reads the stored form; unknown names are ignored (a scope removed in a later version
    /// grants nothing).
    pub fn from_stored(s: &str) -> Self {
        let caps: Vec<Capability> = s.split_whitespace().filter_map(Capability::parse).collect();
        Self::of(&caps)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Capability::name))
            .finish()
    }
}

/// The 403 for a missing capability.
pub fn forbidden(cap: Capability) -> AppError {
    AppError::Forbidden(format!(
        "This credential lacks the '{}' permission",
        cap.name()
    ))
}

/// `Ok` when `caps` holds `cap`, else 403 `FORBIDDEN`.
pub fn check(caps: Capabilities, cap: Capability) -> AppResult<()> {
    if caps.contains(cap) {
        Ok(())
    } else {
        Err(forbidden(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips_and_ignores_unknown_names() {
        let caps = Capabilities::default_key();
        assert_eq!(
            caps.to_stored(),
            "read_sessions send_messages read_messages manage_contacts"
        );
        assert_eq!(Capabilities::from_stored(&caps.to_stored()), caps);
        assert_eq!(
            Capabilities::from_stored("manage_webhooks  bogus\tread_sessions"),
            Capabilities::of(&[Capability::ManageWebhooks, Capability::ReadSessions])
        );
        assert!(Capabilities::all().contains(Capability::ManageApiKeys));
        assert!(!Capabilities::default_key().contains(Capability::ManageWebhooks));
        assert!(check(Capabilities::NONE, Capability::ReadSessions).is_err());
    }
}
