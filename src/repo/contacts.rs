//! Contacts and their tag rows (listing and search are in `contact_search`).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use entity::{contact, contact_tag};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Statement,
    TryInsertResult, sea_query::Expr,
};
use uuid::Uuid;

use crate::domain::ids::TenantId;

pub use super::contact_search::{ListFilter, SortField, list};

/// Most rows per INSERT statement on SQLite (a contact has 19 columns; the limit is 32,766
/// bound values).
const ROWS_PER_STATEMENT: usize = 500;

/// Rough bytes a contact takes on the wire, for [`super::statement_chunks`].
fn contact_size(m: &contact::Model) -> usize {
    200 + m.name.as_ref().map_or(0, String::len)
        + m.email.as_ref().map_or(0, String::len)
        + m.tags.len()
        + m.labels.len()
        + m.params.len()
        + m.search.len()
}

/// The next `limit` contacts after `after` (creation time, id), oldest first: the export scan.
pub async fn after(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<contact::Model>, DbErr> {
    let mut q = contact::Entity::find().filter(contact::Column::TenantId.eq(tenant.uuid()));
    if let Some((at, id)) = after {
        q = q.filter(
            Condition::any().add(contact::Column::CreatedAt.gt(at)).add(
                Condition::all()
                    .add(contact::Column::CreatedAt.eq(at))
                    .add(contact::Column::Id.gt(id)),
            ),
        );
    }
    q.order_by_asc(contact::Column::CreatedAt)
        .order_by_asc(contact::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// One contact of the tenant.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<contact::Model>, DbErr> {
    contact::Entity::find_by_id(id)
        .filter(contact::Column::TenantId.eq(tenant.uuid()))
        .one(db)
        .await
}

/// One contact of the tenant by its vendor contact id.
pub async fn get_by_vendor_id(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    vendor_id: &str,
) -> Result<Option<contact::Model>, DbErr> {
    contact::Entity::find()
        .filter(contact::Column::TenantId.eq(tenant.uuid()))
        .filter(contact::Column::VendorContactId.eq(vendor_id))
        .one(db)
        .await
}

/// Which of `ids` are contacts of the tenant.
pub async fn existing_ids(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, DbErr> {
    let rows: Vec<Uuid> = contact::Entity::find()
        .select_only()
        .column(contact::Column::Id)
        .filter(contact::Column::TenantId.eq(tenant.uuid()))
        .filter(contact::Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Which of `phones` (E.164) the tenant already has.
pub async fn existing_phones(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    phones: &[String],
) -> Result<HashSet<String>, DbErr> {
    let mut found = HashSet::new();
    for chunk in phones.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> = contact::Entity::find()
            .select_only()
            .column(contact::Column::Phone)
            .filter(contact::Column::TenantId.eq(tenant.uuid()))
            .filter(contact::Column::Phone.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

fn tag_rows(c: &contact::Model, tags: &[String]) -> Vec<contact_tag::ActiveModel> {
    tags.iter()
        .map(|t| {
            contact_tag::Model {
                contact_id: c.id,
                tag: t.clone(),
                tenant_id: c.tenant_id,
            }
            .into_active_model()
        })
        .collect()
}

async fn insert_tags(
    db: &impl ConnectionTrait,
    rows: Vec<contact_tag::ActiveModel>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for chunk in super::statement_chunks(backend, &rows, ROWS_PER_STATEMENT * 4, |_| 80) {
        contact_tag::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Inserts one contact and its tags (a duplicate phone is a unique violation).
pub async fn insert(
    db: &impl ConnectionTrait,
    row: contact::Model,
    tags: &[String],
) -> Result<contact::Model, DbErr> {
    let saved = row.clone().into_active_model().insert(db).await?;
    insert_tags(db, tag_rows(&saved, tags)).await?;
    super::contact_search::bump_total(db, TenantId(saved.tenant_id), 1).await?;
    Ok(saved)
}

/// Inserts many contacts of one tenant, skipping numbers the tenant already has; returns the
/// ids actually inserted. Each row comes with its tags.
pub async fn insert_many(
    db: &impl ConnectionTrait,
    rows: Vec<(contact::Model, Vec<String>)>,
) -> Result<HashSet<Uuid>, DbErr> {
    let mut inserted = HashSet::new();
    let backend = db.get_database_backend();
    for chunk in
        super::statement_chunks(backend, &rows, ROWS_PER_STATEMENT, |(m, _)| contact_size(m))
    {
        let models = chunk.iter().map(|(m, _)| m.clone().into_active_model());
        let res = contact::Entity::insert_many(models)
            .on_conflict_do_nothing_on([contact::Column::TenantId, contact::Column::Phone])
            .exec_with_returning_keys(db)
            .await?;
        let ids: HashSet<Uuid> = match res {
            TryInsertResult::Inserted(ids) => ids.into_iter().collect(),
            TryInsertResult::Empty | TryInsertResult::Conflicted => HashSet::new(),
        };
        let tags = chunk
            .iter()
            .filter(|(m, _)| ids.contains(&m.id))
            .flat_map(|(m, t)| tag_rows(m, t))
            .collect();
        insert_tags(db, tags).await?;
        if let Some((first, _)) = chunk.first() {
            let added = i64::try_from(ids.len()).unwrap_or(i64::MAX);
            super::contact_search::bump_total(db, TenantId(first.tenant_id), added).await?;
        }
        inserted.extend(ids);
    }
    Ok(inserted)
}

/// Saves every field of `row` (a contact of `tenant`); replaces its tag rows when `tags` is
/// given. `None` when the contact is gone.
pub async fn update(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    row: contact::Model,
    tags: Option<&[String]>,
) -> Result<Option<contact::Model>, DbErr> {
    let res = contact::Entity::update_many()
        .set(row.clone().into_active_model().reset_all())
        .filter(contact::Column::Id.eq(row.id))
        .filter(contact::Column::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        return Ok(None);
    }
    let saved = row;
    if let Some(tags) = tags {
        contact_tag::Entity::delete_many()
            .filter(contact_tag::Column::ContactId.eq(saved.id))
            .filter(contact_tag::Column::TenantId.eq(tenant.uuid()))
            .exec(db)
            .await?;
        insert_tags(db, tag_rows(&saved, tags)).await?;
    }
    Ok(Some(saved))
}

/// Deletes a contact of the tenant (tags and memberships cascade); false when there was none.
/// Run it in a transaction: it also moves the tenant's contact counter.
pub async fn delete(db: &impl ConnectionTrait, tenant: TenantId, id: Uuid) -> Result<bool, DbErr> {
    let res = contact::Entity::delete_many()
        .filter(contact::Column::Id.eq(id))
        .filter(contact::Column::TenantId.eq(tenant.uuid()))
        .exec(db)
        .await?;
    if res.rows_affected > 0 {
        super::contact_search::bump_total(db, tenant, -1).await?;
    }
    Ok(res.rows_affected > 0)
}

#[derive(FromQueryResult)]
struct TagCountRow {
    tag: String,
    count: i64,
}

/// Every tag of the tenant with its number of contacts, most used first.
pub async fn tag_counts(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> Result<Vec<(String, u64)>, DbErr> {
    let rows = contact_tag::Entity::find()
        .select_only()
        .column(contact_tag::Column::Tag)
        .column_as(contact_tag::Column::ContactId.count(), "count")
        .filter(contact_tag::Column::TenantId.eq(tenant.uuid()))
        .group_by(contact_tag::Column::Tag)
        .order_by_desc(Expr::col(sea_orm::sea_query::Alias::new("count")))
        .order_by_asc(contact_tag::Column::Tag)
        .into_model::<TagCountRow>()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.tag, u64::try_from(r.count).unwrap_or(0)))
        .collect())
}

/// Records a message with `phone` (E.164) at `at`: moves `last_message_at` forward and counts a
/// new conversation when the previous message is more than 24 h older (or there was none).
pub async fn touch_conversation(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    phone: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let window = at - Duration::hours(24);
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE contacts SET \
               conversation_count = conversation_count + CASE WHEN last_message_at IS NULL OR last_message_at < $1 THEN 1 ELSE 0 END, \
               last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at < $2 THEN $2 ELSE last_message_at END \
             WHERE tenant_id = $3 AND phone = $4"
        }
        _ => {
            "UPDATE contacts SET \
               conversation_count = conversation_count + CASE WHEN last_message_at IS NULL OR last_message_at < ?1 THEN 1 ELSE 0 END, \
               last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at < ?2 THEN ?2 ELSE last_message_at END \
             WHERE tenant_id = ?3 AND phone = ?4"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [
            window.into(),
            at.into(),
            tenant.uuid().into(),
            phone.to_owned().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Refreshes PostgreSQL's planner statistics of the contact tables (after a large import);
/// SQLite plans without them.
pub async fn refresh_statistics(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("ANALYZE contacts, contact_tags, contact_counts")
            .await?;
    }
    Ok(())
}
