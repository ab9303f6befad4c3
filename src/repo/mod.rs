//! Repository functions: the only code that builds sea-orm queries.
//!
//! Each takes `&impl ConnectionTrait` (a pool or a transaction) and, for tenant-owned rows,
//! a `TenantId`, so tenant scoping is part of every signature. The few lookups without a
//! tenant are authentication itself (by email, by token hash, by key hash).

pub mod api_keys;
pub mod messages;
pub mod refresh_tokens;
pub mod sessions;
pub mod tenants;
pub mod users;

use sea_orm::{DbErr, SqlErr};

/// True when the error is a foreign-key violation (the referenced row is gone).
pub fn is_foreign_key_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
