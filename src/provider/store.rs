//! The device store a provider gets for one session: small named values (signal keys,
//! app-state sync keys, access tokens) that the protocol reads and writes while the session
//! runs. Values are plaintext bytes here; the database-backed store
//! (`service::device_store::DbDeviceStore`) encrypts each one at rest.
//!
//! Entries live in namespaces (e.g. `identity`, `session`, `pre-key`); each has a version
//! that is 1 when first written and grows by one on each write. Writes are batched: a batch
//! is applied atomically, and when it names an entry twice the last change wins.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use async_trait::async_trait;

/// A stored value and how many times it has been written.
#[derive(Clone, PartialEq, Eq)]
pub struct Versioned {
    /// 1 when first written, +1 on each later write.
    pub version: i64,
    /// The value.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for Versioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versioned")
            .field("version", &self.version)
            .field(
                "value",
                &format_args!("[REDACTED {} bytes]", self.value.len()),
            )
            .finish()
    }
}

/// One change of a batch.
#[derive(Clone, PartialEq, Eq)]
pub struct Write {
    /// Namespace (not empty, no `/`).
    pub ns: String,
    /// Key within the namespace.
    pub key: String,
    /// The new value; `None` deletes the entry.
    pub value: Option<Vec<u8>>,
}

impl Write {
    /// Stores `value` under `ns`/`key`.
    pub fn put(ns: impl Into<String>, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            ns: ns.into(),
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// Deletes `ns`/`key` (nothing happens if it is absent).
    pub fn delete(ns: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            ns: ns.into(),
            key: key.into(),
            value: None,
        }
    }
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write")
            .field("ns", &self.ns)
            .field("key", &self.key)
            .field(
                "value",
                &self
                    .value
                    .as_ref()
                    .map(|v| format!("[REDACTED {} bytes]", v.len())),
            )
            .finish()
    }
}

/// Why a device store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A namespace or key that cannot be stored.
    #[error("invalid device store name: {0}")]
    InvalidName(String),
    /// The session no longer exists (or belongs to another tenant).
    #[error("the session's device store is gone")]
    SessionGone,
    /// A stored value could not be decrypted: the encryption key changed, or the row was
    /// altered or moved in the database.
    #[error("device store entry {ns}/{key} could not be decrypted")]
    Undecryptable {
        /// Namespace.
        ns: String,
        /// Key.
        key: String,
    },
    /// The backing store failed (database unreachable, …).
    #[error("device store: {0}")]
    Backend(String),
}

/// Checks a namespace and key: the namespace must be non-empty without `/` (so
/// `session/namespace/key` names one entry only), and neither may contain NUL.
pub fn check_name(ns: &str, key: &str) -> Result<(), StoreError> {
    if ns.is_empty() || ns.contains('/') {
        return Err(StoreError::InvalidName(format!(
            "namespace '{ns}' must be non-empty and must not contain '/'"
        )));
    }
    if ns.contains('\0') || key.contains('\0') {
        return Err(StoreError::InvalidName(format!(
            "'{}/{}' contains a NUL character",
            ns.escape_debug(),
            key.escape_debug()
        )));
    }
    Ok(())
}

/// A session's device store, as handed to a provider.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// One entry, if present.
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// The entries of `keys` that are present, by key.
    async fn get_many(
        &self,
        ns: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, Versioned>, StoreError>;

    /// Every entry of a namespace, ordered by key (byte order).
    async fn list(&self, ns: &str) -> Result<Vec<(String, Versioned)>, StoreError>;

    /// The entries of a namespace whose key starts with `prefix`, ordered by key (byte
    /// order).
    async fn list_prefix(
        &self,
        ns: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let mut all = self.list(ns).await?;
        all.retain(|(k, _)| k.starts_with(prefix));
        Ok(all)
    }

    /// The keys of a namespace that start with `prefix`, ordered (byte order); values are
    /// not read.
    async fn keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_prefix(ns, prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Applies a batch of puts and deletes atomically (the last change of an entry wins).
    async fn put_batch(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Deletes one namespace, or everything when `ns` is `None` (e.g. after a logout).
    async fn clear(&self, ns: Option<&str>) -> Result<(), StoreError>;

    /// Stores one value.
    async fn put(&self, ns: &str, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.put_batch(vec![Write::put(ns, key, value)]).await
    }

    /// Deletes one entry.
    async fn delete(&self, ns: &str, key: &str) -> Result<(), StoreError> {
        self.put_batch(vec![Write::delete(ns, key)]).await
    }
}

/// An in-memory [`DeviceStore`] for unit tests and throwaway sessions; same semantics as
/// the database-backed one, nothing persisted.
#[derive(Default)]
pub struct MemoryDeviceStore {
    entries: Mutex<BTreeMap<(String, String), Versioned>>,
}

impl std::fmt::Debug for MemoryDeviceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDeviceStore")
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl MemoryDeviceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Versioned>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl DeviceStore for MemoryDeviceStore {
    async fn get(&self, ns: &str, key: &str) -> Result<Option<Versioned>, StoreError> {
        check_name(ns, key)?;
        Ok(self.lock().get(&(ns.to_owned(), key.to_owned())).cloned())
    }

    async fn get_many(
        &self,
        ns: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, Versioned>, StoreError> {
        for key in keys {
            check_name(ns, key)?;
        }
        let entries = self.lock();
        Ok(keys
            .iter()
            .filter_map(|k| {
                entries
                    .get(&(ns.to_owned(), (*k).to_owned()))
                    .map(|v| ((*k).to_owned(), v.clone()))
            })
            .collect())
    }

    async fn list(&self, ns: &str) -> Result<Vec<(String, Versioned)>, StoreError> {
        check_name(ns, "")?;
        Ok(self
            .lock()
            .iter()
            .filter(|((n, _), _)| n == ns)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn put_batch(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        for w in &writes {
            check_name(&w.ns, &w.key)?;
        }
        // Last change per entry, as the database store applies it.
        let mut last = BTreeMap::new();
        for w in writes {
            last.insert((w.ns, w.key), w.value);
        }
        let mut entries = self.lock();
        for (id, value) in last {
            match value {
                Some(value) => {
                    let version = entries.get(&id).map_or(1, |v| v.version + 1);
                    entries.insert(id, Versioned { version, value });
                }
                None => {
                    entries.remove(&id);
                }
            }
        }
        Ok(())
    }

    async fn clear(&self, ns: Option<&str>) -> Result<(), StoreError> {
        match ns {
            Some(ns) => {
                check_name(ns, "")?;
                self.lock().retain(|(n, _), _| n != ns);
            }
            None => self.lock().clear(),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_semantics() {
        let s = MemoryDeviceStore::new();
        assert!(s.get("identity", "me").await.unwrap().is_none());
        s.put("identity", "me", b"secret".to_vec()).await.unwrap();
        s.put("identity", "me", b"secret2".to_vec()).await.unwrap();
        let v = s.get("identity", "me").await.unwrap().unwrap();
        assert_eq!((v.version, v.value.as_slice()), (2, &b"secret2"[..]));
        s.put_batch(vec![
            Write::put("pre-key", "2", b"b".to_vec()),
            Write::put("pre-key", "1", b"a".to_vec()),
            Write::put("pre-key", "3", b"x".to_vec()),
            Write::delete("pre-key", "3"),
        ])
        .await
        .unwrap();
        let list = s.list("pre-key").await.unwrap();
        assert_eq!(
            list.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["1", "2"]
        );
        let many = s.get_many("pre-key", &["1", "3", "2"]).await.unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many["1"].value, b"a");
        s.clear(Some("pre-key")).await.unwrap();
        assert!(s.list("pre-key").await.unwrap().is_empty());
        assert!(s.get("identity", "me").await.unwrap().is_some());
        s.clear(None).await.unwrap();
        assert!(s.get("identity", "me").await.unwrap().is_none());
        // Re-created entries start again at version 1.
        s.put("identity", "me", b"again".to_vec()).await.unwrap();
        assert_eq!(s.get("identity", "me").await.unwrap().unwrap().version, 1);
    }

    #[tokio::test]
    async fn names_are_checked_and_values_redacted() {
        let s = MemoryDeviceStore::new();
        for ns in ["", "a/b", "nul\0"] {
            assert!(matches!(
                s.put(ns, "k", vec![1]).await,
                Err(StoreError::InvalidName(_))
            ));
        }
        let w = Write::put("identity", "me", b"hunter2".to_vec());
        let v = Versioned {
            version: 1,
            value: b"hunter2".to_vec(),
        };
        for dbg in [format!("{w:?}"), format!("{v:?}")] {
            assert!(!dbg.contains("hunter2") && !dbg.contains("104"), "{dbg}");
            assert!(dbg.contains("REDACTED"), "{dbg}");
        }
    }
}
