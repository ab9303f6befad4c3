//! A session's device store: provider keys and state, one row per (namespace, key), holding
//! values already sealed by the caller. Every function is scoped by tenant and session; the
//! table's foreign key (session, tenant) → `wa_sessions` refuses rows for another tenant's
//! session and removes a session's rows with it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::{device_key, key_check};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionSession, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use crate::domain::ids::TenantId;

/// Rows per INSERT on SQLite (7 bound values each, far below its 32,766 limit).
const SQLITE_ROWS_PER_STATEMENT: usize = 1000;
/// Keys per `IN (…)` list.
const KEYS_PER_QUERY: usize = 500;

/// A stored entry: its key, write count and sealed value.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key within its namespace.
    pub key: String,
    /// 1 when first written, +1 on each later write.
    pub version: i64,
    /// The sealed value.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("key", &self.key)
            .field("version", &self.version)
            .field("value", &format_args!("[{} bytes]", self.value.len()))
            .finish()
    }
}

/// One change of a batch: store a sealed value, or delete the entry when `value` is `None`.
#[derive(Clone)]
pub struct KeyWrite {
    /// Namespace.
    pub namespace: String,
    /// Key within the namespace.
    pub key: String,
    /// The sealed value; `None` deletes.
    pub value: Option<Vec<u8>>,
}

impl std::fmt::Debug for KeyWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWrite")
            .field("namespace", &self.namespace)
            .field("key", &self.key)
            .field(
                "value",
                &self.value.as_ref().map(|v| format!("[{} bytes]", v.len())),
            )
            .finish()
    }
}

fn scoped(tenant: TenantId, session: Uuid) -> sea_orm::Select<device_key::Entity> {
    device_key::Entity::find()
        .filter(device_key::Column::TenantId.eq(tenant.uuid()))
        .filter(device_key::Column::SessionId.eq(session))
}

type Row = (String, i64, Vec<u8>);

fn rows(
    select: sea_orm::Select<device_key::Entity>,
) -> sea_orm::Selector<sea_orm::SelectGetableTuple<Row>> {
    select
        .select_only()
        .column(device_key::Column::Key)
        .column(device_key::Column::Version)
        .column(device_key::Column::Value)
        .into_tuple::<Row>()
}

fn stored((key, version, value): Row) -> StoredKey {
    StoredKey {
        key,
        version,
        value,
    }
}

/// One entry.
pub async fn get(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    namespace: &str,
    key: &str,
) -> Result<Option<StoredKey>, DbErr> {
    let select = scoped(tenant, session)
        .filter(device_key::Column::Namespace.eq(namespace))
        .filter(device_key::Column::Key.eq(key));
    Ok(rows(select).one(db).await?.map(stored))
}

/// The entries of `keys` that exist in the namespace (in no particular order).
pub async fn get_many(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    namespace: &str,
    keys: &[&str],
) -> Result<Vec<StoredKey>, DbErr> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_QUERY) {
        let select = scoped(tenant, session)
            .filter(device_key::Column::Namespace.eq(namespace))
            .filter(device_key::Column::Key.is_in(chunk.iter().copied()));
        found.extend(rows(select).all(db).await?.into_iter().map(stored));
    }
    Ok(found)
}

/// Every entry of the namespace, by key.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    namespace: &str,
) -> Result<Vec<StoredKey>, DbErr> {
    list_prefix(db, tenant, session, namespace, "").await
}

/// `LIKE` pattern matching keys that start with `prefix` (`\\` escapes). On SQLite `LIKE`
/// ignores ASCII case, so callers re-check the prefix exactly.
fn prefix_pattern(prefix: &str) -> sea_orm::sea_query::LikeExpr {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    sea_orm::sea_query::LikeExpr::new(p).escape('\\')
}

/// The namespace's rows whose key starts with `prefix` (all of them when it is empty).
fn in_namespace(
    tenant: TenantId,
    session: Uuid,
    namespace: &str,
    prefix: &str,
) -> sea_orm::Select<device_key::Entity> {
    let select = scoped(tenant, session).filter(device_key::Column::Namespace.eq(namespace));
    if prefix.is_empty() {
        select
    } else {
        select.filter(Expr::col(device_key::Column::Key).like(prefix_pattern(prefix)))
    }
}

/// The entries of the namespace whose key starts with `prefix`, by key.
pub async fn list_prefix(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    namespace: &str,
    prefix: &str,
) -> Result<Vec<StoredKey>, DbErr> {
    let select =
        in_namespace(tenant, session, namespace, prefix).order_by_asc(device_key::Column::Key);
    Ok(rows(select)
        .all(db)
        .await?
        .into_iter()
        .map(stored)
        .filter(|r| r.key.starts_with(prefix))
        .collect())
}

/// The keys of the namespace that start with `prefix` (values not read), by key.
pub async fn keys(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    namespace: &str,
    prefix: &str,
) -> Result<Vec<String>, DbErr> {
    let keys: Vec<String> = in_namespace(tenant, session, namespace, prefix)
        .order_by_asc(device_key::Column::Key)
        .select_only()
        .column(device_key::Column::Key)
        .into_tuple()
        .all(db)
        .await?;
    Ok(keys.into_iter().filter(|k| k.starts_with(prefix)).collect())
}

/// Applies a batch atomically: upserts (a new entry gets version 1, an existing one its
/// version + 1) and deletes. When the same entry appears more than once, the last change
/// wins. Upserts go out as multi-row `INSERT … ON CONFLICT … DO UPDATE` statements and
/// deletes as one statement per namespace; a batch that fits in one statement runs without
/// an explicit transaction (one round trip), larger ones in one transaction. A session that
/// is gone, or of another tenant, fails the batch: a foreign-key violation for new entries,
/// [`DbErr::RecordNotUpdated`] for existing ones; nothing is written either way.
pub async fn put_batch<C>(
    db: &C,
    tenant: TenantId,
    session: Uuid,
    writes: Vec<KeyWrite>,
    now: DateTime<Utc>,
) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    // Last change per entry, in a stable order (namespace, key).
    let mut last: BTreeMap<(String, String), Option<Vec<u8>>> = BTreeMap::new();
    for w in writes {
        last.insert((w.namespace, w.key), w.value);
    }
    let mut upserts = Vec::new();
    let mut deletes: HashMap<String, Vec<String>> = HashMap::new();
    for ((namespace, key), value) in last {
        match value {
            Some(value) => upserts.push((namespace, key, value)),
            None => deletes.entry(namespace).or_default().push(key),
        }
    }
    let backend = db.get_database_backend();
    let chunks = super::statement_chunks(backend, &upserts, SQLITE_ROWS_PER_STATEMENT, |u| {
        u.0.len() + u.1.len() + u.2.len() + 64
    });
    let delete_statements: usize = deletes
        .values()
        .map(|keys| keys.len().div_ceil(KEYS_PER_QUERY))
        .sum();
    if chunks.len() + delete_statements <= 1 {
        return apply(db, tenant, session, &chunks, &deletes, now).await;
    }
    let txn = db.begin().await?;
    apply(&txn, tenant, session, &chunks, &deletes, now).await?;
    txn.commit().await
}

async fn apply(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    chunks: &[&[(String, String, Vec<u8>)]],
    deletes: &HashMap<String, Vec<String>>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for (namespace, keys) in deletes {
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            device_key::Entity::delete_many()
                .filter(device_key::Column::TenantId.eq(tenant.uuid()))
                .filter(device_key::Column::SessionId.eq(session))
                .filter(device_key::Column::Namespace.eq(namespace.as_str()))
                .filter(device_key::Column::Key.is_in(chunk.iter().map(String::as_str)))
                .exec(db)
                .await?;
        }
    }
    for chunk in chunks {
        let models = chunk
            .iter()
            .map(|(namespace, key, value)| device_key::ActiveModel {
                tenant_id: Set(tenant.uuid()),
                session_id: Set(session),
                namespace: Set(namespace.clone()),
                key: Set(key.clone()),
                version: Set(1),
                value: Set(value.clone()),
                updated_at: Set(now),
            });
        let written = device_key::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([
                    device_key::Column::SessionId,
                    device_key::Column::Namespace,
                    device_key::Column::Key,
                ])
                .update_columns([device_key::Column::Value, device_key::Column::UpdatedAt])
                .value(
                    device_key::Column::Version,
                    Expr::col((device_key::Entity, device_key::Column::Version)).add(1),
                )
                // Never touch a row of another tenant (its session id cannot be ours, but
                // the check costs nothing).
                .action_and_where(
                    Expr::col((device_key::Entity, device_key::Column::TenantId)).eq(Expr::col((
                        Alias::new("excluded"),
                        device_key::Column::TenantId,
                    ))),
                )
                .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        // Each row is inserted or updated unless the WHERE above refused it.
        if written < chunk.len() as u64 {
            return Err(DbErr::RecordNotUpdated);
        }
    }
    Ok(())
}

/// Deletes every entry of a namespace; returns how many there were.
pub async fn delete_namespace(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
    namespace: &str,
) -> Result<u64, DbErr> {
    let res = device_key::Entity::delete_many()
        .filter(device_key::Column::TenantId.eq(tenant.uuid()))
        .filter(device_key::Column::SessionId.eq(session))
        .filter(device_key::Column::Namespace.eq(namespace))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Deletes every entry of a session; returns how many there were.
pub async fn delete_session(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    session: Uuid,
) -> Result<u64, DbErr> {
    let res = device_key::Entity::delete_many()
        .filter(device_key::Column::TenantId.eq(tenant.uuid()))
        .filter(device_key::Column::SessionId.eq(session))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// The database's key-check value (not tenant-owned: one per database), if written yet.
pub async fn key_check(db: &impl ConnectionTrait) -> Result<Option<Vec<u8>>, DbErr> {
    Ok(key_check::Entity::find_by_id(1)
        .one(db)
        .await?
        .map(|m| m.value))
}

/// Stores the key-check value unless one is there already (another instance may have won the
/// race; the caller reads back what is stored).
pub async fn insert_key_check(
    db: &impl ConnectionTrait,
    value: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    key_check::Entity::insert(key_check::ActiveModel {
        id: Set(1),
        value: Set(value),
        created_at: Set(now),
    })
    .on_conflict_do_nothing_on([key_check::Column::Id])
    .exec_without_returning(db)
    .await?;
    Ok(())
}
