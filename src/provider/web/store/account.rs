//! The crate's message-secret store and its device record on the device store.

use async_trait::async_trait;
use whatsapp_rust::wacore::store::{
    Device,
    error::Result,
    traits::{
        DeviceStore as WaDeviceStore, MsgSecretEntry, MsgSecretStore, merge_msg_secret_expiry,
        merge_msg_secret_message_ts,
    },
};

use super::{DEVICE_KEY, NEXT_DEVICE_ID, WebStore, db_err, encode, invalid, key3, ns, unstamp};
use crate::provider::store::Write;
use std::collections::HashMap;

#[async_trait]
impl MsgSecretStore for WebStore {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let stored = entries.len();
        let _rmw = self.rmw.lock().await;
        let keys: Vec<String> = entries
            .iter()
            .map(|e| key3(&e.chat, &e.sender, &e.msg_id))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let existing = self
            .kv
            .get_many(ns::MSG_SECRET, &refs)
            .await
            .map_err(db_err)?;
        // Later entries of the batch for the same message merge with the earlier ones.
        let mut merged: HashMap<&str, (Vec<u8>, i64, i64)> = HashMap::new();
        for (e, k) in entries.iter().zip(&keys) {
            let before = match merged.get(k.as_str()) {
                Some((_, exp, ts)) => Some((*exp, *ts)),
                None => existing
                    .get(k)
                    .map(|v| decode_secret(&v.value).map(|(_, exp, ts)| (exp, ts)))
                    .transpose()?,
            };
            let (expires_at, message_ts) = match before {
                Some((exp, ts)) => (
                    merge_msg_secret_expiry(exp, e.expires_at),
                    merge_msg_secret_message_ts(ts, e.message_ts),
                ),
                None => (e.expires_at, e.message_ts),
            };
            merged.insert(k, (e.secret.to_vec(), expires_at, message_ts));
        }
        let writes = merged
            .into_iter()
            .map(|(k, (secret, exp, ts))| {
                Write::put(ns::MSG_SECRET, k, encode_secret(&secret, exp, ts))
            })
            .collect();
        self.batch(writes).await?;
        Ok(stored)
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_msg_secret_with_ts(chat, sender, msg_id)
            .await?
            .map(|(secret, _)| secret))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        self.get(ns::MSG_SECRET, &key3(chat, sender, msg_id))
            .await?
            .map(|v| decode_secret(&v).map(|(secret, _, ts)| (secret, ts)))
            .transpose()
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_where(ns::MSG_SECRET, |v| {
            let (_, expires_at, _) = decode_secret(v)?;
            Ok(expires_at != 0 && expires_at <= cutoff_timestamp)
        })
        .await
    }
}

/// A message secret: expiry and message time (8 bytes each), then the secret.
fn encode_secret(secret: &[u8], expires_at: i64, message_ts: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + secret.len());
    v.extend_from_slice(&expires_at.to_be_bytes());
    v.extend_from_slice(&message_ts.to_be_bytes());
    v.extend_from_slice(secret);
    v
}

fn decode_secret(v: &[u8]) -> Result<(Vec<u8>, i64, i64)> {
    let (expires_at, rest) = unstamp(v)?;
    let (message_ts, secret) = unstamp(rest)?;
    Ok((secret.to_vec(), expires_at, message_ts))
}

#[async_trait]
impl WaDeviceStore for WebStore {
    async fn save(&self, device: &Device) -> Result<()> {
        self.put(ns::DEVICE, DEVICE_KEY, encode(device)?).await
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.get_decoded(ns::DEVICE, DEVICE_KEY).await
    }

    async fn exists(&self) -> Result<bool> {
        Ok(self.get(ns::DEVICE, DEVICE_KEY).await?.is_some())
    }

    async fn create(&self) -> Result<i32> {
        let _rmw = self.rmw.lock().await;
        let id = match self.get(ns::DEVICE, NEXT_DEVICE_ID).await? {
            Some(v) => i32::from_be_bytes(
                <[u8; 4]>::try_from(v.as_slice()).map_err(|_| invalid("device counter"))?,
            ),
            None => 1,
        };
        let mut writes = vec![Write::put(
            ns::DEVICE,
            NEXT_DEVICE_ID,
            id.wrapping_add(1).to_be_bytes().to_vec(),
        )];
        if self.get(ns::DEVICE, DEVICE_KEY).await?.is_none() {
            writes.push(Write::put(ns::DEVICE, DEVICE_KEY, encode(&Device::new())?));
        }
        self.batch(writes).await?;
        Ok(id)
    }
}
