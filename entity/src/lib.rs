//! sea-orm entities for wagate. One module per table; the migration crate owns the DDL.

pub mod api_key;
pub mod message;
pub mod refresh_token;
pub mod tenant;
pub mod user;
pub mod wa_session;
