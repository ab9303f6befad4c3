//! The service layer: every business rule lives here, called by REST and GraphQL alike.
//! Input and output types are shared by both adapters.

pub mod api_keys;
pub mod auth;
pub mod pagination;
pub mod sessions;
