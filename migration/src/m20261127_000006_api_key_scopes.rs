//! API key scopes: what each key may do. Keys made before scopes existed get the default set,
//! which is exactly what they could reach before (sending, reading messages and sessions,
//! contacts).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Scopes,
}

/// The default scopes, space-separated (as `Capabilities::to_stored` writes them).
const DEFAULT_SCOPES: &str = "read_sessions send_messages read_messages manage_contacts";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(
                        ColumnDef::new(ApiKeys::Scopes)
                            .text()
                            .not_null()
                            .default(DEFAULT_SCOPES),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeys::Scopes)
                    .to_owned(),
            )
            .await
    }
}
