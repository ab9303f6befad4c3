//! The session runtime: which instance owns a session's live connection (with a lease its
//! heartbeat renews), how many reconnects the current outage has taken, and per-session
//! provider settings (their secrets live encrypted in the device store, not here).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WaSessions {
    Table,
    OwnerInstance,
    OwnerLeaseUntil,
    ReconnectAttempt,
    Settings,
}

const INDEX: &str = "idx_wa_sessions_owner_lease";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        let columns = [
            ColumnDef::new(WaSessions::OwnerInstance)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(WaSessions::OwnerLeaseUntil)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(WaSessions::ReconnectAttempt)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(WaSessions::Settings)
                .text()
                .null()
                .to_owned(),
        ];
        for mut c in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(WaSessions::Table)
                        .add_column(&mut c)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(WaSessions::Table)
                    .col(WaSessions::OwnerLeaseUntil)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(WaSessions::Table)
                    .to_owned(),
            )
            .await?;
        for c in [
            WaSessions::Settings,
            WaSessions::ReconnectAttempt,
            WaSessions::OwnerLeaseUntil,
            WaSessions::OwnerInstance,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WaSessions::Table)
                        .drop_column(c)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
