//! The service layer: every business rule lives here, called by REST and GraphQL alike.
//! Input and output types are shared by both adapters.

pub mod api_keys;
pub mod auth;
pub(crate) mod check;
pub mod contacts;
pub mod device_store;
pub mod live;
pub mod messages;
pub mod pagination;
pub mod rate_limit;
pub mod sessions;
pub mod webhooks;

use crate::error::{AppError, AppResult};

/// `value` without surrounding white space; a validation error on `field` when nothing is left.
pub fn required_trimmed<'a>(value: &'a str, field: &str, message: &str) -> AppResult<&'a str> {
    let v = value.trim();
    if v.is_empty() {
        Err(AppError::field(field, message))
    } else {
        Ok(v)
    }
}
