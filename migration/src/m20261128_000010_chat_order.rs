//! Per-chat order. A queued message may be claimed only while no older message of its chat
//! (session and recipient) is scheduled after it (waiting for a retry) or leased by another
//! instance. `lease_owner` records which instance holds a message's lease; the partial index
//! answers "older queued messages of this chat" by walking the chat's queue in order, touching
//! only queued rows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    LeaseOwner,
}

const INDEX: &str = "idx_messages_chat_queue";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(ColumnDef::new(Messages::LeaseOwner).text().null())
                    .to_owned(),
            )
            .await?;
        // Partial indexes are written the same way on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS {INDEX} ON messages \
                 (session_id, phone, created_at, id) WHERE status = 'queued'"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&format!("DROP INDEX IF EXISTS {INDEX}"))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::LeaseOwner)
                    .to_owned(),
            )
            .await
    }
}
