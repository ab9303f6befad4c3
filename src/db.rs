//! Database connection and migrations.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::config::Config;

/// Connects to the configured database. SQLite files get WAL with `synchronous=FULL` (a
/// commit is on disk before it is acknowledged), a busy timeout and foreign keys.
pub async fn connect(cfg: &Config) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(cfg.database_url().to_owned());
    opts.max_connections(cfg.db_max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    if !cfg.is_postgres() {
        // Keep at least one connection for the life of the pool (in-memory databases vanish
        // with their last connection).
        opts.idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>);
        opts.map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                // 64 MiB of page cache (the default is 2 MiB): bulk imports touch many
                // index pages, and lists and searches of big directories stay in memory.
                .pragma("cache_size", "-65536")
                .foreign_keys(true)
                .create_if_missing(true)
        });
    }
    Database::connect(opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))
}

/// Applies pending migrations (idempotent).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))
}
