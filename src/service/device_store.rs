//! The database-backed [`DeviceStore`]: each value sealed with the gateway's [`Cipher`] and
//! bound to its place (`session_id/namespace/key`), so a row copied to another session or key
//! does not open. Also the start-up check that the configured key is the database's key.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::{
    clock::Clock,
    domain::ids::TenantId,
    provider::store::{DeviceStore, StoreError, Versioned, Write, check_name},
    repo::{
        self,
        device_keys::{KeyWrite, StoredKey},
    },
    secrets::Cipher,
    state::AppState,
};

/// The known value sealed in the key-check row.
const KEY_CHECK_PLAINTEXT: &[u8] = b"wagate encryption key check v1";
/// Associated data of the key-check row (no device key's AAD can look like it: those start
/// with a UUID).
const KEY_CHECK_AAD: &[u8] = b"wagate/key_check";

/// Start-up found secrets in the database sealed with another key.
#[derive(Debug, thiserror::Error)]
#[error("WAGATE_ENCRYPTION_KEY does not match the key this database's secrets were encrypted with")]
pub struct WrongEncryptionKey;

/// Makes sure `cipher` holds the key this database's secrets are sealed with: on first start
/// it seals a known value into the key-check row; later it must open it. Two instances
/// starting at once on a new database agree on whichever row was written first.
pub async fn verify_key(
    db: &DatabaseConnection,
    cipher: &Cipher,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let stored = match repo::device_keys::key_check(db).await? {
        Some(v) => v,
        None => {
            let blob = cipher.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?;
            repo::device_keys::insert_key_check(db, blob, now).await?;
            repo::device_keys::key_check(db)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the encryption key check could not be stored"))?
        }
    };
    match cipher.decrypt(&stored, KEY_CHECK_AAD) {
        Ok(plain) if plain == KEY_CHECK_PLAINTEXT => Ok(()),
        _ => Err(WrongEncryptionKey.into()),
    }
}

/// One session's device store in the database, encrypted at rest.
#[derive(Clone)]
pub struct DbDeviceStore {
    db: DatabaseConnection,
    cipher: Arc<Cipher>,
    clock: Arc<dyn Clock>,
    tenant: TenantId,
    session: Uuid,
}

impl std::fmt::Debug for DbDeviceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbDeviceStore")
            .field("tenant", &self.tenant)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

fn backend(e: DbErr) -> StoreError {
    // A foreign-key violation (new entries) or a refused upsert (existing entries): the
    // session is gone or is not this tenant's.
    if repo::is_foreign_key_violation(&e) || matches!(e, DbErr::RecordNotUpdated) {
        StoreError::SessionGone
    } else {
        StoreError::Backend(e.to_string())
    }
}

impl DbDeviceStore {
    /// The store of `session` (of `tenant`).
    pub fn new(
        db: DatabaseConnection,
        cipher: Arc<Cipher>,
        clock: Arc<dyn Clock>,
        tenant: TenantId,
        session: Uuid,
    ) -> Self {
        Self {
            db,
            cipher,
            clock,
            tenant,
            session,
        }
    }

    /// The store of `session` using the gateway's database, cipher and clock.
    pub fn for_session(state: &AppState, tenant: TenantId, session: Uuid) -> Self {
        Self::new(
            state.db.clone(),
            state.cipher.clone(),
            state.clock.clone(),
            tenant,
            session,
        )
    }

    /// What a value is bound to: `session_id/namespace/key` (namespaces hold no `/`).
    fn aad(&self, ns: &str, key: &str) -> Vec<u8> {
        format!("{}/{ns}/{key}", self.session).into_bytes()
    }

    fn open(&self, ns: &str, row: StoredKey) -> Result<(String, Versioned), StoreError> {
        let value = self
            .cipher
            .decrypt(&row.value, &self.aad(ns, &row.key))
            .map_err(|_| StoreError::Undecryptable {
                ns: ns.to_owned(),
                key: row.key.clone(),
            })?;
        Ok((
            row.key,
            Versioned {
                version: row.version,
                value,
            },
        ))
    }
}

#[async_trait]
impl DeviceStore for DbDeviceStore {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_name(ns, key)?;
        let row = repo::device_keys::get(&self.db, self.tenant, self.session, ns, key)
            .await
            .map_err(backend)?;
        row.map(|r| self.open(ns, r).map(|(_, v)| v)).transpose()
    }

    async fn get_many(
        &self,
        ns: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, Versioned>, StoreError> {
        for key in keys {
            check_name(ns, key)?;
        }
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        repo::device_keys::get_many(&self.db, self.tenant, self.session, ns, keys)
            .await
            .map_err(backend)?
            .into_iter()
            .map(|r| self.open(ns, r))
            .collect()
    }

    async fn list(&self, ns: &str) -> Result<Vec<(String, Versioned)>, StoreError> {
        self.list_prefix(ns, "").await
    }

    async fn list_prefix(
        &self,
        ns: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        check_name(ns, prefix)?;
        let mut entries =
            repo::device_keys::list_prefix(&self.db, self.tenant, self.session, ns, prefix)
                .await
                .map_err(backend)?
                .into_iter()
                .map(|r| self.open(ns, r))
                .collect::<Result<Vec<_>, _>>()?;
        // Byte order on every backend (PostgreSQL's collation may order text differently).
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    async fn keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        check_name(ns, prefix)?;
        let mut keys = repo::device_keys::keys(&self.db, self.tenant, self.session, ns, prefix)
            .await
            .map_err(backend)?;
        keys.sort_unstable();
        Ok(keys)
    }

    async fn put_batch(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut sealed = Vec::with_capacity(writes.len());
        for w in writes {
            check_name(&w.ns, &w.key)?;
            let value = match w.value {
                Some(plain) => Some(
                    self.cipher
                        .encrypt(&plain, &self.aad(&w.ns, &w.key))
                        .map_err(|e| StoreError::Backend(e.to_string()))?,
                ),
                None => None,
            };
            sealed.push(KeyWrite {
                namespace: w.ns,
                key: w.key,
                value,
            });
        }
        repo::device_keys::put_batch(
            &self.db,
            self.tenant,
            self.session,
            sealed,
            self.clock.now(),
        )
        .await
        .map_err(backend)
    }

    async fn clear(&self, ns: Option<&str>) -> Result<(), StoreError> {
        match ns {
            Some(ns) => {
                check_name(ns, "")?;
                repo::device_keys::delete_namespace(&self.db, self.tenant, self.session, ns).await
            }
            None => repo::device_keys::delete_session(&self.db, self.tenant, self.session).await,
        }
        .map(|_| ())
        .map_err(backend)
    }
}
