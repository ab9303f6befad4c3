//! The domain: ids, statuses, kinds and the domain event, shared by every layer above.
//!
//! A leaf: it imports only `entity` (the stored rows) and external crates, never a module of
//! the gateway, so every other layer may depend on it and it on none of them.

pub mod event;
pub mod ids;
pub mod message;
pub mod provider;
pub mod session;

pub use event::{DomainEvent, EventPayload, PairCodePayload, QrPayload, StatusPayload};
pub use ids::{ApiKeyId, TenantId, UserId};
pub use message::{Direction, Location, MediaOutput, MessageKind, MessageOutput, MessageStatus};
pub use provider::ProviderKind;
pub use session::SessionStatus;
