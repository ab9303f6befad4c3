//! Repository functions: the only code that builds sea-orm queries.
//!
//! Each takes `&impl ConnectionTrait` (a pool or a transaction) and, for tenant-owned rows,
//! a `TenantId`, so tenant scoping is part of every signature. The few lookups without a
//! tenant are authentication itself (by email, by token hash, by key hash) and the database's
//! encryption key check.

pub mod api_keys;
pub mod chat_queue;
pub mod contact_groups;
pub mod contact_search;
pub mod contacts;
pub mod device_keys;
pub mod message_claims;
pub mod messages;
pub mod refresh_tokens;
pub mod session_leases;
pub mod session_lookup;
pub mod sessions;
pub mod tenants;
pub mod users;
pub mod webhook_deliveries;
pub mod webhooks;

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

/// Positional placeholders for raw SQL: `$1…$N` on PostgreSQL, `?1…?N` on SQLite.
pub(crate) fn placeholders<const N: usize>(backend: DbBackend) -> [String; N] {
    std::array::from_fn(|i| match backend {
        DbBackend::Postgres => format!("${}", i + 1),
        _ => format!("?{}", i + 1),
    })
}

/// True when the error is a foreign-key violation (the referenced row is gone).
pub fn is_foreign_key_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_)))
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Bytes of values per INSERT statement on PostgreSQL. sqlx leaves Nagle's algorithm on, so a
/// statement larger than the socket's send buffer (16 KiB at first) goes out in two writes
/// and the second waits for the server's delayed ACK: about 40 ms per statement.
const PG_STATEMENT_BYTES: usize = 12 * 1024;

/// Splits rows for multi-row INSERTs: on SQLite up to `max_rows` per statement (its limit is
/// 32,766 bound values); on PostgreSQL also at about 12 KiB of values by `size`.
pub fn statement_chunks<T>(
    backend: DbBackend,
    rows: &[T],
    max_rows: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        let n = size(row);
        let full = i - start == max_rows
            || (backend == DbBackend::Postgres && i > start && bytes + n > PG_STATEMENT_BYTES);
        if full {
            out.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += n;
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_by_rows_and_by_bytes_on_postgres() {
        let rows: Vec<usize> = vec![5000; 10];
        let sqlite = statement_chunks(DbBackend::Sqlite, &rows, 4, |n| *n);
        assert_eq!(
            sqlite.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        let pg = statement_chunks(DbBackend::Postgres, &rows, 4, |n| *n);
        assert_eq!(
            pg.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [2, 2, 2, 2, 2]
        );
        let huge = vec![20_000usize, 1, 1];
        let pg = statement_chunks(DbBackend::Postgres, &huge, 100, |n| *n);
        assert_eq!(pg.iter().map(|c| c.len()).collect::<Vec<_>>(), [1, 2]);
        assert!(statement_chunks(DbBackend::Postgres, &[] as &[usize], 4, |n| *n).is_empty());
    }
}
