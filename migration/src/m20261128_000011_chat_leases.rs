//! Per-chat order without walking a chat's queue: a claim checks the chat's head (through
//! `idx_messages_chat_queue`) and the chat's older messages leased by another instance. This
//! partial index holds only leased queued rows (messages in flight, or abandoned by a dead
//! instance until they are claimed again), so that check reads a handful of rows at most.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_messages_chat_leased";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Partial indexes are written the same way on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS {INDEX} ON messages \
                 (session_id, phone, created_at, id) \
                 WHERE status = 'queued' AND lease_until IS NOT NULL"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP INDEX IF EXISTS {INDEX}"))
            .await?;
        Ok(())
    }
}
