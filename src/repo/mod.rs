//! Repository functions: the only code that builds sea-orm queries.
//!
//! Each takes `&impl ConnectionTrait` (a pool or a transaction) and, for tenant-owned rows,
//! a `TenantId`, so tenant scoping is part of every signature. The few lookups without a
//! tenant are authentication itself (by email, by token hash, by key hash).

pub mod api_keys;
pub mod contact_groups;
pub mod contact_search;
pub mod contacts;
pub mod messages;
pub mod refresh_tokens;
pub mod sessions;
pub mod tenants;
pub mod users;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqlErr,
    TransactionTrait,
};

/// A transaction for bookkeeping that can be re-derived after a crash (send results and
/// receipts: a lost "sent" means the message is sent again under the same id, which the
/// provider recognises). On PostgreSQL its commit does not wait for the WAL flush
/// (`synchronous_commit = off`), so many small updates don't queue behind fsyncs; SQLite
/// commits it normally.
pub async fn begin_bookkeeping(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    Ok(txn)
}

/// True when the error is a foreign-key violation (the referenced row is gone).
pub fn is_foreign_key_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
