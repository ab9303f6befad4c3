//! sea-orm entities for wagate. One module per table; the migration crate owns the DDL.

pub mod api_key;
pub mod contact;
pub mod contact_count;
pub mod contact_group;
pub mod contact_group_member;
pub mod contact_tag;
pub mod device_key;
pub mod key_check;
pub mod message;
pub mod refresh_token;
pub mod tenant;
pub mod user;
pub mod wa_session;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
