//! Messages: the outbound outbox and the inbound log, one table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WaSessions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    TenantId,
    SessionId,
    Direction,
    Kind,
    Phone,
    RemoteJid,
    Body,
    MediaKey,
    MediaMime,
    MediaSize,
    MediaFilename,
    Location,
    Status,
    Error,
    ProviderMessageId,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    IdempotencyKey,
    RequestHash,
    CreatedAt,
    UpdatedAt,
    SentAt,
    DeliveredAt,
    ReadAt,
    PlayedAt,
    FailedAt,
}

fn ts(c: Messages) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().null().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Messages as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(M::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(M::TenantId).uuid().not_null())
                    .col(ColumnDef::new(M::SessionId).uuid().not_null())
                    .col(ColumnDef::new(M::Direction).string().not_null())
                    .col(ColumnDef::new(M::Kind).string().not_null())
                    .col(ColumnDef::new(M::Phone).string().not_null())
                    .col(ColumnDef::new(M::RemoteJid).string().not_null())
                    .col(ColumnDef::new(M::Body).text().null())
                    .col(ColumnDef::new(M::MediaKey).string().null())
                    .col(ColumnDef::new(M::MediaMime).string().null())
                    .col(ColumnDef::new(M::MediaSize).big_integer().null())
                    .col(ColumnDef::new(M::MediaFilename).string().null())
                    .col(ColumnDef::new(M::Location).text().null())
                    .col(ColumnDef::new(M::Status).string().not_null())
                    .col(ColumnDef::new(M::Error).text().null())
                    .col(ColumnDef::new(M::ProviderMessageId).string().null())
                    .col(ColumnDef::new(M::Attempts).integer().not_null().default(0))
                    .col(ts(M::NextAttemptAt))
                    .col(ts(M::LeaseUntil))
                    .col(ColumnDef::new(M::IdempotencyKey).string().null())
                    .col(ColumnDef::new(M::RequestHash).string().null())
                    .col(
                        ColumnDef::new(M::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(M::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ts(M::SentAt))
                    .col(ts(M::DeliveredAt))
                    .col(ts(M::ReadAt))
                    .col(ts(M::PlayedAt))
                    .col(ts(M::FailedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_tenant")
                            .from_tbl(M::Table)
                            .from_col(M::TenantId)
                            .to_tbl(Tenants::Table)
                            .to_col(Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_session")
                            .from_tbl(M::Table)
                            .from_col(M::SessionId)
                            .to_tbl(WaSessions::Table)
                            .to_col(WaSessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("idx_messages_tenant_created")
                .table(M::Table)
                .col(M::TenantId)
                .col(M::CreatedAt)
                .take(),
            // The dispatcher's claim scan: due queued messages.
            Index::create()
                .name("idx_messages_due")
                .table(M::Table)
                .col(M::Status)
                .col(M::NextAttemptAt)
                .take(),
            // Receipts and inbound de-duplication find messages by the provider's id.
            Index::create()
                .name("uq_messages_provider_id")
                .table(M::Table)
                .col(M::SessionId)
                .col(M::Direction)
                .col(M::ProviderMessageId)
                .unique()
                .take(),
            // One message per idempotency key and tenant (keys are released after their TTL).
            Index::create()
                .name("uq_messages_idempotency")
                .table(M::Table)
                .col(M::TenantId)
                .col(M::IdempotencyKey)
                .unique()
                .take(),
        ];
        for mut idx in indexes {
            manager.create_index(idx.if_not_exists().take()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Messages::Table).if_exists().take())
            .await
    }
}
