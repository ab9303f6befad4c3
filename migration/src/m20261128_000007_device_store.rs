//! The per-session device store (provider keys, encrypted at rest) and the key-check row that
//! tells a start-up with the wrong encryption key apart from one with the right key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WaSessions {
    Table,
    Id,
    TenantId,
}

#[derive(DeriveIden)]
enum DeviceKeys {
    Table,
    TenantId,
    SessionId,
    Namespace,
    Key,
    Version,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum KeyCheck {
    Table,
    Id,
    Value,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The target of device_keys' (session_id, tenant_id) foreign key: a device key can
        // only belong to a session of its own tenant.
        manager
            .create_index(
                Index::create()
                    .name("uq_wa_sessions_id_tenant")
                    .table(WaSessions::Table)
                    .col(WaSessions::Id)
                    .col(WaSessions::TenantId)
                    .unique()
                    .if_not_exists()
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeviceKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DeviceKeys::TenantId).uuid().not_null())
                    .col(ColumnDef::new(DeviceKeys::SessionId).uuid().not_null())
                    .col(ColumnDef::new(DeviceKeys::Namespace).text().not_null())
                    .col(ColumnDef::new(DeviceKeys::Key).text().not_null())
                    .col(
                        ColumnDef::new(DeviceKeys::Version)
                            .big_integer()
                            .not_null()
                            .default(1),
                    )
                    .col(ColumnDef::new(DeviceKeys::Value).blob().not_null())
                    .col(
                        ColumnDef::new(DeviceKeys::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(DeviceKeys::SessionId)
                            .col(DeviceKeys::Namespace)
                            .col(DeviceKeys::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_device_keys_session")
                            .from_tbl(DeviceKeys::Table)
                            .from_col(DeviceKeys::SessionId)
                            .from_col(DeviceKeys::TenantId)
                            .to_tbl(WaSessions::Table)
                            .to_col(WaSessions::Id)
                            .to_col(WaSessions::TenantId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(KeyCheck::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(KeyCheck::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(KeyCheck::Value).blob().not_null())
                    .col(
                        ColumnDef::new(KeyCheck::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KeyCheck::Table).if_exists().take())
            .await?;
        manager
            .drop_table(Table::drop().table(DeviceKeys::Table).if_exists().take())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_wa_sessions_id_tenant")
                    .table(WaSessions::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
