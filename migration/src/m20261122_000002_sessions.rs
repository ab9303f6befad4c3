//! WhatsApp sessions.

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
    TenantId,
    Name,
    Provider,
    Status,
    PhoneNumber,
    Credentials,
    AttemptId,
    QrCode,
    QrExpiresAt,
    LastError,
    ConnectedAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WaSessions::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(WaSessions::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(WaSessions::TenantId).uuid().not_null())
                    .col(ColumnDef::new(WaSessions::Name).string().not_null())
                    .col(ColumnDef::new(WaSessions::Provider).string().not_null())
                    .col(ColumnDef::new(WaSessions::Status).string().not_null())
                    .col(ColumnDef::new(WaSessions::PhoneNumber).string().null())
                    .col(ColumnDef::new(WaSessions::Credentials).text().null())
                    .col(ColumnDef::new(WaSessions::AttemptId).uuid().null())
                    .col(ColumnDef::new(WaSessions::QrCode).text().null())
                    .col(
                        ColumnDef::new(WaSessions::QrExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(WaSessions::LastError).text().null())
                    .col(
                        ColumnDef::new(WaSessions::ConnectedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(WaSessions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WaSessions::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_wa_sessions_tenant")
                            .from_tbl(WaSessions::Table)
                            .from_col(WaSessions::TenantId)
                            .to_tbl(Tenants::Table)
                            .to_col(Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_wa_sessions_tenant_created")
                    .table(WaSessions::Table)
                    .col(WaSessions::TenantId)
                    .col(WaSessions::CreatedAt)
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_wa_sessions_status")
                    .table(WaSessions::Table)
                    .col(WaSessions::Status)
                    .if_not_exists()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WaSessions::Table).if_exists().take())
            .await
    }
}
