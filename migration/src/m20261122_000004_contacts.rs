//! Contacts, their tags, groups and group membership, and the trigram search index
//! (SQLite: an FTS5 `trigram` table kept by triggers; PostgreSQL: `pg_trgm` GIN).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    TenantId,
    VendorContactId,
    Phone,
    Name,
    Email,
    CountryCode,
    Tags,
    Labels,
    Params,
    Source,
    OptIn,
    IsBlocked,
    LastMessageAt,
    ConversationCount,
    Search,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ContactCounts {
    Table,
    TenantId,
    Total,
}

#[derive(DeriveIden)]
enum ContactTags {
    Table,
    ContactId,
    Tag,
    TenantId,
}

#[derive(DeriveIden)]
enum ContactGroups {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ContactGroupMembers {
    Table,
    GroupId,
    ContactId,
    TenantId,
    CreatedAt,
}

fn tenant_fk(from: impl IntoIden, name: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from_col(from)
        .to_tbl(Tenants::Table)
        .to_col(Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

fn ts(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .not_null()
        .take()
}

const SQLITE_SEARCH: &[&str] = &[
    "CREATE VIRTUAL TABLE IF NOT EXISTS contacts_fts USING fts5(search, content='contacts', content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER IF NOT EXISTS contacts_fts_insert AFTER INSERT ON contacts BEGIN \
       INSERT INTO contacts_fts(rowid, search) VALUES (new.rowid, new.search); END",
    "CREATE TRIGGER IF NOT EXISTS contacts_fts_delete AFTER DELETE ON contacts BEGIN \
       INSERT INTO contacts_fts(contacts_fts, rowid, search) VALUES ('delete', old.rowid, old.search); END",
    "CREATE TRIGGER IF NOT EXISTS contacts_fts_update AFTER UPDATE OF search ON contacts BEGIN \
       INSERT INTO contacts_fts(contacts_fts, rowid, search) VALUES ('delete', old.rowid, old.search); \
       INSERT INTO contacts_fts(rowid, search) VALUES (new.rowid, new.search); END",
];

/// Creates `pg_trgm` (if missing) and the trigram index, naming the operator class by the
/// extension's own schema so it works whatever the connection's `search_path` is.
async fn postgres_search(conn: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};
    // In `public` when possible: an extension created in a per-tenant or per-test schema
    // would vanish with that schema.
    // (Checked first: a failed statement would abort the migration's transaction.) The
    // extension is database-wide: gateways migrating at once take turns creating it.
    conn.execute_unprepared("SELECT pg_advisory_xact_lock(hashtext('wagate:pg_trgm'))")
        .await?;
    let public_ok = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') \
               AND has_schema_privilege('public', 'CREATE') AS ok",
        ))
        .await?
        .map(|r| r.try_get::<bool>("", "ok"))
        .transpose()?
        .unwrap_or(false);
    conn.execute_unprepared(if public_ok {
        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"
    } else {
        "CREATE EXTENSION IF NOT EXISTS pg_trgm"
    })
    .await?;
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT n.nspname AS schema FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'",
        ))
        .await?
        .ok_or_else(|| DbErr::Migration("pg_trgm is not installed".into()))?;
    let schema: String = row.try_get("", "schema")?;
    let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
    conn.execute_unprepared(&format!(
        "CREATE INDEX IF NOT EXISTS idx_contacts_search_trgm ON contacts USING gin (search {quoted}.gin_trgm_ops)"
    ))
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Contacts as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(C::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(C::TenantId).uuid().not_null())
                    .col(ColumnDef::new(C::VendorContactId).string().not_null())
                    .col(ColumnDef::new(C::Phone).string().not_null())
                    .col(ColumnDef::new(C::Name).string().null())
                    .col(ColumnDef::new(C::Email).string().null())
                    .col(ColumnDef::new(C::CountryCode).string().null())
                    .col(ColumnDef::new(C::Tags).text().not_null())
                    .col(ColumnDef::new(C::Labels).text().not_null())
                    .col(ColumnDef::new(C::Params).text().not_null())
                    .col(ColumnDef::new(C::Source).string().not_null())
                    .col(ColumnDef::new(C::OptIn).boolean().not_null())
                    .col(ColumnDef::new(C::IsBlocked).boolean().not_null())
                    .col(
                        ColumnDef::new(C::LastMessageAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(C::ConversationCount)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(C::Search).text().not_null())
                    .col(ts(C::CreatedAt))
                    .col(ts(C::UpdatedAt))
                    .foreign_key(&mut tenant_fk(C::TenantId, "fk_contacts_tenant"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactCounts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ContactCounts::TenantId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ContactCounts::Total)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .foreign_key(&mut tenant_fk(
                        ContactCounts::TenantId,
                        "fk_contact_counts_tenant",
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactTags::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ContactTags::ContactId).uuid().not_null())
                    .col(ColumnDef::new(ContactTags::Tag).string().not_null())
                    .col(ColumnDef::new(ContactTags::TenantId).uuid().not_null())
                    .primary_key(
                        Index::create()
                            .col(ContactTags::ContactId)
                            .col(ContactTags::Tag),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_tags_contact")
                            .from_col(ContactTags::ContactId)
                            .to_tbl(C::Table)
                            .to_col(C::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactGroups::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ContactGroups::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ContactGroups::TenantId).uuid().not_null())
                    .col(ColumnDef::new(ContactGroups::Name).string().not_null())
                    .col(ColumnDef::new(ContactGroups::Description).text().null())
                    .col(ts(ContactGroups::CreatedAt))
                    .col(ts(ContactGroups::UpdatedAt))
                    .foreign_key(&mut tenant_fk(
                        ContactGroups::TenantId,
                        "fk_contact_groups_tenant",
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactGroupMembers::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ContactGroupMembers::GroupId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ContactGroupMembers::ContactId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ContactGroupMembers::TenantId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ts(ContactGroupMembers::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ContactGroupMembers::GroupId)
                            .col(ContactGroupMembers::ContactId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_group_members_group")
                            .from_col(ContactGroupMembers::GroupId)
                            .to_tbl(ContactGroups::Table)
                            .to_col(ContactGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_group_members_contact")
                            .from_col(ContactGroupMembers::ContactId)
                            .to_tbl(C::Table)
                            .to_col(C::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        let indexes = [
            Index::create()
                .name("uq_contacts_phone")
                .table(C::Table)
                .col(C::TenantId)
                .col(C::Phone)
                .unique()
                .take(),
            Index::create()
                .name("uq_contacts_vendor_id")
                .table(C::Table)
                .col(C::TenantId)
                .col(C::VendorContactId)
                .unique()
                .take(),
            // The three sort orders, each with the id as tie-breaker (stable pages).
            Index::create()
                .name("idx_contacts_created")
                .table(C::Table)
                .col(C::TenantId)
                .col(C::CreatedAt)
                .col(C::Id)
                .take(),
            Index::create()
                .name("idx_contacts_name")
                .table(C::Table)
                .col(C::TenantId)
                .col(C::Name)
                .col(C::Id)
                .take(),
            Index::create()
                .name("idx_contacts_last_message")
                .table(C::Table)
                .col(C::TenantId)
                .col(C::LastMessageAt)
                .col(C::Id)
                .take(),
            Index::create()
                .name("idx_contact_tags_tag")
                .table(ContactTags::Table)
                .col(ContactTags::TenantId)
                .col(ContactTags::Tag)
                .take(),
            Index::create()
                .name("uq_contact_groups_name")
                .table(ContactGroups::Table)
                .col(ContactGroups::TenantId)
                .col(ContactGroups::Name)
                .unique()
                .take(),
            Index::create()
                .name("idx_group_members_contact")
                .table(ContactGroupMembers::Table)
                .col(ContactGroupMembers::ContactId)
                .take(),
        ];
        for mut idx in indexes {
            manager.create_index(idx.if_not_exists().take()).await?;
        }
        let conn = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            return postgres_search(conn).await;
        }
        for sql in SQLITE_SEARCH {
            conn.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Sqlite {
            conn.execute_unprepared("DROP TABLE IF EXISTS contacts_fts")
                .await?;
        }
        for t in [
            ContactGroupMembers::Table.into_iden(),
            ContactGroups::Table.into_iden(),
            ContactTags::Table.into_iden(),
            ContactCounts::Table.into_iden(),
            Contacts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).if_exists().take())
                .await?;
        }
        Ok(())
    }
}
