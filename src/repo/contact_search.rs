//! Listing and searching a tenant's contacts so that a page costs about the same at 10k and
//! at 1M contacts:
//! - the unfiltered total comes from a per-tenant counter (`contact_counts`), not a scan;
//! - a search is driven by the trigram index (FTS5 on SQLite, `pg_trgm` on PostgreSQL) and
//!   counted in the same pass (`COUNT(*) OVER ()`);
//! - a tag or group filter is counted on its own index; a rare one drives the page from its
//!   member list, a common one walks the sort index and checks membership per row.

use entity::{contact, contact_count, contact_group_member, contact_tag};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    sea_query::{Expr, ExprTrait, LikeExpr, NullOrdering, Query, SelectStatement},
};
use uuid::Uuid;

use crate::domain::ids::TenantId;

/// Sort field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    /// `created_at`.
    CreatedAt,
    /// `name`, contacts without a name last.
    Name,
    /// `last_message_at`, contacts without messages last.
    LastMessageAt,
}

/// Where a keyset page starts: the sort value and id of the previous page's last row.
#[derive(Clone, Debug, PartialEq)]
pub struct Keyset {
    /// The sort column's value (`None`: NULL, a contact without a name or a message).
    pub value: Option<KeyValue>,
    /// The row's id (the tie-breaker).
    pub id: Uuid,
}

/// A sort column's value.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyValue {
    /// `created_at` or `last_message_at`.
    Time(chrono::DateTime<chrono::Utc>),
    /// `name`.
    Text(String),
}

impl Keyset {
    /// The key of `m` under `sort`.
    pub fn of(m: &contact::Model, sort: SortField) -> Self {
        let value = match sort {
            SortField::CreatedAt => Some(KeyValue::Time(m.created_at)),
            SortField::Name => m.name.clone().map(KeyValue::Text),
            SortField::LastMessageAt => m.last_message_at.map(KeyValue::Time),
        };
        Keyset { value, id: m.id }
    }
}

fn sort_column(sort: SortField) -> contact::Column {
    match sort {
        SortField::CreatedAt => contact::Column::CreatedAt,
        SortField::Name => contact::Column::Name,
        SortField::LastMessageAt => contact::Column::LastMessageAt,
    }
}

/// Rows after `k` in the order `sort`, `order` (NULLs last either way), then id.
fn after_key(k: &Keyset, sort: SortField, order: &Order) -> Condition {
    let col = Expr::col((contact::Entity, sort_column(sort)));
    let id = Expr::col((contact::Entity, contact::Column::Id));
    let desc = matches!(order, Order::Desc);
    let id_after = if desc { id.lt(k.id) } else { id.gt(k.id) };
    match &k.value {
        None => Condition::all().add(col.is_null()).add(id_after),
        Some(v) => {
            let v: sea_orm::Value = match v {
                KeyValue::Time(t) => (*t).into(),
                KeyValue::Text(s) => s.clone().into(),
            };
            let beyond = if desc {
                col.clone().lt(v.clone())
            } else {
                col.clone().gt(v.clone())
            };
            Condition::any()
                .add(beyond)
                .add(Condition::all().add(col.clone().eq(v)).add(id_after))
                .add(col.is_null())
        }
    }
}

/// What a list matches.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Lower-cased search text (already reduced to digits for phone-like input).
    pub search: Option<String>,
    /// Exact tag.
    pub tag: Option<String>,
    /// Group membership.
    pub group_id: Option<Uuid>,
}

fn like_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// True when the search goes through SQLite's FTS5 table (its trigram tokenizer needs at
/// least three characters; shorter input scans).
fn uses_fts(backend: DbBackend, q: &str) -> bool {
    backend == DbBackend::Sqlite && q.chars().count() >= 3
}

fn search_condition(backend: DbBackend, q: &str) -> Condition {
    if uses_fts(backend, q) {
        let phrase = format!("\"{}\"", q.replace('"', "\"\""));
        Condition::all().add(Expr::cust_with_values(
            "\"contacts\".\"rowid\" IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ?)",
            [phrase],
        ))
    } else {
        Condition::all().add(
            Expr::col((contact::Entity, contact::Column::Search))
                .like(LikeExpr::new(like_pattern(q)).escape('\\')),
        )
    }
}

/// The tenant's contacts. `driven_elsewhere`: on SQLite, keep the planner off the tenant's
/// sort index (`+tenant_id`) because another condition selects the few rows to read.
fn tenant_rows(
    backend: DbBackend,
    tenant: TenantId,
    driven_elsewhere: bool,
) -> Select<contact::Entity> {
    if driven_elsewhere && backend == DbBackend::Sqlite {
        contact::Entity::find().filter(Expr::cust_with_values(
            "+\"contacts\".\"tenant_id\" = ?",
            [tenant.uuid()],
        ))
    } else {
        contact::Entity::find().filter(contact::Column::TenantId.eq(tenant.uuid()))
    }
}

fn tag_members(tenant: TenantId, tag: &str) -> SelectStatement {
    Query::select()
        .column(contact_tag::Column::ContactId)
        .from(contact_tag::Entity)
        .and_where(contact_tag::Column::TenantId.eq(tenant.uuid()))
        .and_where(contact_tag::Column::Tag.eq(tag))
        .take()
}

fn group_members(tenant: TenantId, group: Uuid) -> SelectStatement {
    Query::select()
        .column(contact_group_member::Column::ContactId)
        .from(contact_group_member::Entity)
        .and_where(contact_group_member::Column::TenantId.eq(tenant.uuid()))
        .and_where(contact_group_member::Column::GroupId.eq(group))
        .take()
}

/// Adds the tag and group conditions: as `id IN (members)` when the members drive the query,
/// else as a per-row `EXISTS` primary-key probe.
fn with_membership(
    mut q: Select<contact::Entity>,
    tenant: TenantId,
    f: &ListFilter,
    members_drive: bool,
) -> Select<contact::Entity> {
    if let Some(tag) = &f.tag {
        q = q.filter(if members_drive {
            contact::Column::Id.in_subquery(tag_members(tenant, tag))
        } else {
            Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(contact_tag::Entity)
                    .and_where(
                        Expr::col((contact_tag::Entity, contact_tag::Column::ContactId))
                            .equals((contact::Entity, contact::Column::Id)),
                    )
                    .and_where(contact_tag::Column::Tag.eq(tag.as_str()))
                    .take(),
            )
        });
    }
    if let Some(group) = f.group_id {
        q = q.filter(if members_drive {
            contact::Column::Id.in_subquery(group_members(tenant, group))
        } else {
            Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(contact_group_member::Entity)
                    .and_where(contact_group_member::Column::GroupId.eq(group))
                    .and_where(
                        Expr::col((
                            contact_group_member::Entity,
                            contact_group_member::Column::ContactId,
                        ))
                        .equals((contact::Entity, contact::Column::Id)),
                    )
                    .take(),
            )
        });
    }
    q
}

fn sorted(q: Select<contact::Entity>, sort: SortField, order: Order) -> Select<contact::Entity> {
    let q = match sort {
        SortField::CreatedAt => q.order_by(contact::Column::CreatedAt, order.clone()),
        SortField::Name => {
            q.order_by_with_nulls(contact::Column::Name, order.clone(), NullOrdering::Last)
        }
        SortField::LastMessageAt => q.order_by_with_nulls(
            contact::Column::LastMessageAt,
            order.clone(),
            NullOrdering::Last,
        ),
    };
    q.order_by(contact::Column::Id, order)
}

#[derive(FromQueryResult)]
struct Counted {
    #[sea_orm(nested)]
    contact: contact::Model,
    total_count: i64,
}

/// How many contacts the tenant has (the maintained counter).
pub async fn tenant_total(db: &impl ConnectionTrait, tenant: TenantId) -> Result<u64, DbErr> {
    let row = contact_count::Entity::find_by_id(tenant.uuid())
        .one(db)
        .await?;
    Ok(row.map_or(0, |r| u64::try_from(r.total).unwrap_or(0)))
}

/// A page of the tenant's contacts and the number matching. Every order ends with the id, so
/// pages never overlap or skip rows that tie.
/// With `after`, the page starts after that key instead of at `offset` (keyset paging: rows
/// added or removed elsewhere in the list don't shift it).
#[allow(clippy::too_many_arguments)]
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    f: &ListFilter,
    sort: SortField,
    order: Order,
    offset: u64,
    limit: u64,
    after: Option<&Keyset>,
) -> Result<(Vec<contact::Model>, u64), DbErr> {
    let backend = db.get_database_backend();
    let (offset, keyset) = match after {
        Some(k) => (0, Some(after_key(k, sort, &order))),
        None => (offset, None),
    };
    if let Some(s) = f.search.as_deref().filter(|s| !s.is_empty()) {
        let q = with_membership(
            tenant_rows(backend, tenant, uses_fts(backend, s)),
            tenant,
            f,
            false,
        )
        .filter(search_condition(backend, s));
        // Under a keyset bound the window would count only the rows after it: count apart.
        if let Some(k) = keyset {
            let total = q.clone().count(db).await?;
            let rows = sorted(q.filter(k), sort, order)
                .limit(limit)
                .all(db)
                .await?;
            return Ok((rows, total));
        }
        let rows = sorted(q.clone(), sort, order)
            .column_as(Expr::cust("COUNT(*) OVER ()"), "total_count")
            .offset(offset)
            .limit(limit)
            .into_model::<Counted>()
            .all(db)
            .await?;
        let total = match rows.first() {
            Some(r) => u64::try_from(r.total_count).unwrap_or(0),
            None if offset > 0 => q.count(db).await?,
            None => 0,
        };
        return Ok((rows.into_iter().map(|r| r.contact).collect(), total));
    }
    let all = tenant_total(db, tenant).await?;
    let total = match (&f.tag, f.group_id) {
        (None, None) => all,
        (Some(tag), None) => {
            contact_tag::Entity::find()
                .filter(contact_tag::Column::TenantId.eq(tenant.uuid()))
                .filter(contact_tag::Column::Tag.eq(tag.as_str()))
                .count(db)
                .await?
        }
        (None, Some(group)) => {
            contact_group_member::Entity::find()
                .filter(contact_group_member::Column::TenantId.eq(tenant.uuid()))
                .filter(contact_group_member::Column::GroupId.eq(group))
                .count(db)
                .await?
        }
        (Some(_), Some(_)) => {
            with_membership(tenant_rows(backend, tenant, false), tenant, f, true)
                .count(db)
                .await?
        }
    };
    // Fewer than one in twenty: read the members and sort them; otherwise walk the sort
    // index, where a page fills after a few dozen rows.
    let members_drive = (f.tag.is_some() || f.group_id.is_some()) && total.saturating_mul(20) < all;
    let mut q = with_membership(
        tenant_rows(backend, tenant, members_drive),
        tenant,
        f,
        members_drive,
    );
    if let Some(k) = keyset {
        q = q.filter(k);
    }
    let rows = sorted(q, sort, order)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Adds `delta` to the tenant's contact counter (in the transaction that inserts or deletes).
pub async fn bump_total(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    delta: i64,
) -> Result<(), DbErr> {
    if delta == 0 {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO contact_counts (tenant_id, total) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET total = contact_counts.total + excluded.total"
        }
        _ => {
            "INSERT INTO contact_counts (tenant_id, total) VALUES (?1, ?2) \
             ON CONFLICT (tenant_id) DO UPDATE SET total = contact_counts.total + excluded.total"
        }
    };
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        sql,
        [tenant.uuid().into(), delta.into()],
    ))
    .await?;
    Ok(())
}
