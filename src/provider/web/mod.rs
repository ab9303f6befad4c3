//! The `web` provider: WhatsApp Web multi-device through the `whatsapp-rust` crate. Its keys
//! and state live in the session's device store ([`store::WebStore`]), so they survive
//! restarts and follow the session to whichever instance owns it.

pub mod events;
pub mod store;
