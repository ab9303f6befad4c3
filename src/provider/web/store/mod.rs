//! `whatsapp-rust`'s storage [`Backend`] on a session's [`DeviceStore`]: the Signal keys,
//! app-state sync state, protocol caches and the device itself live in the gateway's
//! database, encrypted at rest, so any instance can take the session over.
//!
//! Each of the crate's stores becomes a namespace of the device store (see [`ns`]); batch
//! calls from the crate (it coalesces ratchet writes itself) become one atomic
//! [`DeviceStore::put_batch`], one round trip. Semantics follow the crate's reference
//! `InMemoryBackend`, which the differential test in `tests/web_store.rs` holds them to.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::{
    appstate::hash::HashState,
    store::{
        error::{Result, StoreError},
        traits::{AppStateSyncKey, AppSyncStore, SignalStore},
    },
};

use crate::provider::store::{DeviceStore, StoreError as KvError, Write};

mod account;
mod protocol;

/// The device store's namespaces for the crate's data.
pub mod ns {
    /// Identity keys by Signal address.
    pub const IDENTITY: &str = "wa-identity";
    /// Signal sessions by address.
    pub const SESSION: &str = "wa-session";
    /// One-time pre-keys by id (decimal).
    pub const PREKEY: &str = "wa-prekey";
    /// Signed pre-keys by id (decimal).
    pub const SIGNED_PREKEY: &str = "wa-signed-prekey";
    /// Group sender keys by address.
    pub const SENDER_KEY: &str = "wa-sender-key";
    /// App-state sync keys by key id (hex).
    pub const SYNC_KEY: &str = "wa-sync-key";
    /// App-state collection versions by collection name.
    pub const APP_VERSION: &str = "wa-app-version";
    /// App-state mutation MACs: one namespace per collection (`wa-mac:<name>`).
    pub const MAC_PREFIX: &str = "wa-mac:";
    /// Which devices of a group hold our sender key: `<group>␟<device>` → 0/1.
    pub const SENDER_KEY_DEVICES: &str = "wa-skd";
    /// LID → phone number mapping entries by LID.
    pub const LID: &str = "wa-lid";
    /// Phone number → LID.
    pub const PN: &str = "wa-pn";
    /// Base keys seen per (address, message id).
    pub const BASE_KEY: &str = "wa-base-key";
    /// Device lists by user.
    pub const DEVICES: &str = "wa-devices";
    /// Group metadata blobs by group.
    pub const GROUP_META: &str = "wa-group-meta";
    /// Trusted-contact tokens by JID.
    pub const TC_TOKEN: &str = "wa-tc-token";
    /// Sent message payloads kept for retries: `<chat>␟<id>`.
    pub const SENT: &str = "wa-sent";
    /// Decrypted inbound messages not yet acknowledged: `<chat>␟<sender>␟<id>`.
    pub const PENDING_INBOUND: &str = "wa-pending-in";
    /// Message secrets: `<chat>␟<sender>␟<id>`.
    pub const MSG_SECRET: &str = "wa-msg-secret";
    /// The device (keys, identity, account) and the store's own bookkeeping.
    pub const DEVICE: &str = "wa-device";
}

/// Separates the parts of a composite key (no JID or message id holds it).
const SEP: char = '\u{1f}';
const DEVICE_KEY: &str = "device";
const LATEST_SYNC_KEY: &str = "latest-sync-key";
const NEXT_DEVICE_ID: &str = "next-device-id";

fn key2(a: &str, b: &str) -> String {
    format!("{a}{SEP}{b}")
}

fn key3(a: &str, b: &str, c: &str) -> String {
    format!("{a}{SEP}{b}{SEP}{c}")
}

fn db_err(e: KvError) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn ser_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Serialization(Box::new(e))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(ser_err)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(ser_err)
}

fn invalid(what: &str) -> StoreError {
    StoreError::Validation(format!("stored {what} is malformed"))
}

/// A timestamp (unix seconds) in front of a stored value.
fn stamped(ts: i64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn unstamp(v: &[u8]) -> Result<(i64, &[u8])> {
    let (ts, rest) = v.split_first_chunk::<8>().ok_or_else(|| invalid("entry"))?;
    Ok((i64::from_be_bytes(*ts), rest))
}

fn now_secs() -> i64 {
    whatsapp_rust::wacore::time::now_secs()
}

/// The crate's storage backend for one session, on that session's device store.
pub struct WebStore {
    kv: Arc<dyn DeviceStore>,
    /// Serialises read-modify-write operations (merges, mappings, counters), which the
    /// crate may run concurrently.
    rmw: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for WebStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebStore").finish_non_exhaustive()
    }
}

impl WebStore {
    /// The backend over `kv`.
    pub fn new(kv: Arc<dyn DeviceStore>) -> Self {
        Self {
            kv,
            rmw: tokio::sync::Mutex::new(()),
        }
    }

    async fn get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.kv.get(ns, key).await.map_err(db_err)?.map(|v| v.value))
    }

    async fn put(&self, ns: &str, key: &str, value: Vec<u8>) -> Result<()> {
        self.kv.put(ns, key, value).await.map_err(db_err)
    }

    async fn delete(&self, ns: &str, key: &str) -> Result<()> {
        self.kv.delete(ns, key).await.map_err(db_err)
    }

    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.kv.put_batch(writes).await.map_err(db_err)
    }

    async fn get_decoded<T: DeserializeOwned>(&self, ns: &str, key: &str) -> Result<Option<T>> {
        self.get(ns, key).await?.map(|v| decode(&v)).transpose()
    }

    /// Deletes the entries of `ns` whose value `expired` says so; how many went.
    async fn delete_where(&self, ns: &str, expired: impl Fn(&[u8]) -> Result<bool>) -> Result<u32> {
        let mut deletes = Vec::new();
        for (key, v) in self.kv.list(ns).await.map_err(db_err)? {
            if expired(&v.value)? {
                deletes.push(Write::delete(ns, key));
            }
        }
        let n = u32::try_from(deletes.len()).unwrap_or(u32::MAX);
        self.batch(deletes).await?;
        Ok(n)
    }
}

fn id_key(id: u32) -> String {
    id.to_string()
}

fn mac_ns(name: &str) -> String {
    format!("{}{name}", ns::MAC_PREFIX)
}

#[async_trait]
impl SignalStore for WebStore {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.put(ns::IDENTITY, address, key.to_vec()).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let writes = identities
            .iter()
            .map(|(a, k)| Write::put(ns::IDENTITY, a.as_ref(), k.to_vec()))
            .collect();
        self.batch(writes).await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        self.get(ns::IDENTITY, address)
            .await?
            .map(|v| <[u8; 32]>::try_from(v.as_slice()).map_err(|_| invalid("identity key")))
            .transpose()
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.delete(ns::IDENTITY, address).await
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        Ok(self.get(ns::SESSION, address).await?.map(Bytes::from))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.put(ns::SESSION, address, session.to_vec()).await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        let writes = sessions
            .iter()
            .map(|(a, s)| Write::put(ns::SESSION, a.as_ref(), s.to_vec()))
            .collect();
        self.batch(writes).await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.delete(ns::SESSION, address).await
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        Ok(self.get(ns::SESSION, address).await?.is_some())
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        let of_user = |k: &String| {
            k.strip_prefix(user)
                .is_some_and(|rest| rest.starts_with('@') || rest.starts_with(':'))
        };
        for space in [ns::SESSION, ns::IDENTITY] {
            let keys = self.kv.keys(space, user).await.map_err(db_err)?;
            if keys.iter().any(of_user) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn store_prekey(&self, id: u32, record: &[u8], _uploaded: bool) -> Result<()> {
        self.put(ns::PREKEY, &id_key(id), record.to_vec()).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], _uploaded: bool) -> Result<()> {
        let writes = keys
            .iter()
            .map(|(id, r)| Write::put(ns::PREKEY, id_key(*id), r.to_vec()))
            .collect();
        self.batch(writes).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self.get(ns::PREKEY, &id_key(id)).await?.map(Bytes::from))
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        let keys: Vec<String> = ids.iter().map(|id| id_key(*id)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let found = self.kv.get_many(ns::PREKEY, &refs).await.map_err(db_err)?;
        // In the order asked, repeats included.
        Ok(ids
            .iter()
            .zip(&keys)
            .filter_map(|(id, k)| found.get(k).map(|v| (*id, Bytes::from(v.value.clone()))))
            .collect())
    }

    async fn mark_prekeys_uploaded(&self, _ids: &[u32]) -> Result<()> {
        // Like the reference store, the uploaded flag is not kept; what matters is that a
        // removed pre-key is never brought back, which doing nothing guarantees.
        Ok(())
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.delete(ns::PREKEY, &id_key(id)).await
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let keys = self.kv.keys(ns::PREKEY, "").await.map_err(db_err)?;
        Ok(keys
            .iter()
            .filter_map(|k| k.parse::<u32>().ok())
            .max()
            .unwrap_or(0))
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.put(ns::SIGNED_PREKEY, &id_key(id), record.to_vec())
            .await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.get(ns::SIGNED_PREKEY, &id_key(id)).await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let all = self.kv.list(ns::SIGNED_PREKEY).await.map_err(db_err)?;
        all.into_iter()
            .map(|(k, v)| {
                let id = k.parse::<u32>().map_err(|_| invalid("signed pre-key id"))?;
                Ok((id, v.value))
            })
            .collect()
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.delete(ns::SIGNED_PREKEY, &id_key(id)).await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put(ns::SENDER_KEY, address, record.to_vec()).await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        let writes = sender_keys
            .iter()
            .map(|(a, r)| Write::put(ns::SENDER_KEY, a.as_ref(), r.to_vec()))
            .collect();
        self.batch(writes).await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.get(ns::SENDER_KEY, address).await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.delete(ns::SENDER_KEY, address).await
    }
}

#[async_trait]
impl AppSyncStore for WebStore {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        self.get_decoded(ns::SYNC_KEY, &hex::encode(key_id)).await
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.batch(vec![
            Write::put(ns::SYNC_KEY, hex::encode(key_id), encode(&key)?),
            Write::put(ns::DEVICE, LATEST_SYNC_KEY, key_id.to_vec()),
        ])
        .await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        Ok(self
            .get_decoded(ns::APP_VERSION, name)
            .await?
            .unwrap_or_default())
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        self.put(ns::APP_VERSION, name, encode(&state)?).await
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        _version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        let space = mac_ns(name);
        let writes = mutations
            .iter()
            .map(|m| Write::put(&space, hex::encode(&m.index_mac), m.value_mac.clone()))
            .collect();
        self.batch(writes).await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(&mac_ns(name), &hex::encode(index_mac)).await
    }

    async fn get_mutation_macs(
        &self,
        name: &str,
        index_macs: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Vec<u8>>> {
        let keys: Vec<String> = index_macs.iter().map(hex::encode).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut found = self
            .kv
            .get_many(&mac_ns(name), &refs)
            .await
            .map_err(db_err)?;
        Ok(index_macs
            .iter()
            .zip(&keys)
            .filter_map(|(mac, k)| found.remove(k).map(|v| (*mac, v.value)))
            .collect())
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let space = mac_ns(name);
        let writes = index_macs
            .iter()
            .map(|m| Write::delete(&space, hex::encode(m)))
            .collect();
        self.batch(writes).await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.kv.clear(Some(&mac_ns(name))).await.map_err(db_err)
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        self.get(ns::DEVICE, LATEST_SYNC_KEY).await
    }
}
