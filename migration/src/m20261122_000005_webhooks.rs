//! Webhook endpoints, their durable delivery queue and the attempt log.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    TenantId,
    Url,
    Description,
    Events,
    SessionIds,
    Enabled,
    Secret,
    PreviousSecret,
    PreviousSecretExpiresAt,
    DisabledReason,
    DisabledAt,
    FailingSince,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    TenantId,
    EndpointId,
    EventId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LeaseId,
    LastHttpStatus,
    LastError,
    CreatedAt,
    UpdatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    TenantId,
    DeliveryId,
    AttemptedAt,
    HttpStatus,
    LatencyMs,
    ResponseBody,
    Error,
}

fn ts(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .not_null()
        .take()
}

fn ts_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).timestamp_with_time_zone().null().take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use WebhookAttempts as A;
        use WebhookDeliveries as D;
        use WebhookEndpoints as E;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(E::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(E::TenantId).uuid().not_null())
                    .col(ColumnDef::new(E::Url).text().not_null())
                    .col(ColumnDef::new(E::Description).text().null())
                    .col(ColumnDef::new(E::Events).text().null())
                    .col(ColumnDef::new(E::SessionIds).text().null())
                    .col(ColumnDef::new(E::Enabled).boolean().not_null())
                    .col(ColumnDef::new(E::Secret).string().not_null())
                    .col(ColumnDef::new(E::PreviousSecret).string().null())
                    .col(ts_null(E::PreviousSecretExpiresAt))
                    .col(ColumnDef::new(E::DisabledReason).text().null())
                    .col(ts_null(E::DisabledAt))
                    .col(ts_null(E::FailingSince))
                    .col(ts(E::CreatedAt))
                    .col(ts(E::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_endpoints_tenant")
                            .from_col(E::TenantId)
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
                    .if_not_exists()
                    .name("idx_webhook_endpoints_tenant")
                    .table(E::Table)
                    .col(E::TenantId)
                    .col(E::CreatedAt)
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(D::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(D::TenantId).uuid().not_null())
                    .col(ColumnDef::new(D::EndpointId).uuid().not_null())
                    .col(ColumnDef::new(D::EventId).uuid().not_null())
                    .col(ColumnDef::new(D::EventType).string().not_null())
                    .col(ColumnDef::new(D::Payload).text().not_null())
                    .col(ColumnDef::new(D::Status).string().not_null())
                    .col(ColumnDef::new(D::Attempts).integer().not_null().default(0))
                    .col(ts_null(D::NextAttemptAt))
                    .col(ts_null(D::LeaseUntil))
                    .col(ColumnDef::new(D::LeaseId).uuid().null())
                    .col(ColumnDef::new(D::LastHttpStatus).integer().null())
                    .col(ColumnDef::new(D::LastError).text().null())
                    .col(ts(D::CreatedAt))
                    .col(ts(D::UpdatedAt))
                    .col(ts_null(D::DeliveredAt))
                    // No foreign key to the endpoint: an event being queued while its
                    // endpoint is deleted must not fail the change that caused it. Deleting
                    // an endpoint deletes its deliveries; a row queued in that moment is
                    // never claimed (claims join enabled endpoints).
                    .take(),
            )
            .await?;
        // The worker's queue: pending rows by due time.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_webhook_deliveries_due")
                    .table(D::Table)
                    .col(D::Status)
                    .col(D::NextAttemptAt)
                    .take(),
            )
            .await?;
        // The delivery log of one endpoint, newest first.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_webhook_deliveries_endpoint")
                    .table(D::Table)
                    .col(D::EndpointId)
                    .col(D::CreatedAt)
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(A::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(A::TenantId).uuid().not_null())
                    .col(ColumnDef::new(A::DeliveryId).uuid().not_null())
                    .col(ts(A::AttemptedAt))
                    .col(ColumnDef::new(A::HttpStatus).integer().null())
                    .col(ColumnDef::new(A::LatencyMs).integer().not_null())
                    .col(ColumnDef::new(A::ResponseBody).text().null())
                    .col(ColumnDef::new(A::Error).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_attempts_delivery")
                            .from_col(A::DeliveryId)
                            .to_tbl(D::Table)
                            .to_col(D::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_webhook_attempts_delivery")
                    .table(A::Table)
                    .col(A::DeliveryId)
                    .col(A::AttemptedAt)
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).if_exists().take())
                .await?;
        }
        Ok(())
    }
}
