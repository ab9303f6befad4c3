//! The crate's protocol store on the device store: sender-key devices, LID mappings, base
//! keys, device lists, group metadata, trusted-contact tokens, sent messages kept for retries
//! and the inbound buffer behind the durability hook.

use std::collections::HashMap;

use async_trait::async_trait;
use whatsapp_rust::wacore::store::{
    error::Result,
    traits::{DeviceListRecord, LidPnMappingEntry, ProtocolStore, TcTokenEntry},
};

use super::{
    SEP, WebStore, db_err, decode, encode, invalid, key2, key3, now_secs, ns, stamped, unstamp,
};
use crate::provider::store::Write;

#[async_trait]
impl ProtocolStore for WebStore {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        let prefix = format!("{group_jid}{SEP}");
        let rows = self
            .kv
            .list_prefix(ns::SENDER_KEY_DEVICES, &prefix)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| {
                let device = k.strip_prefix(&prefix)?;
                Some((device.to_owned(), v.value.first() == Some(&1)))
            })
            .collect())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let writes = entries
            .iter()
            .map(|(device, has)| {
                Write::put(
                    ns::SENDER_KEY_DEVICES,
                    key2(group_jid, device),
                    vec![u8::from(*has)],
                )
            })
            .collect();
        self.batch(writes).await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        let keys = self
            .kv
            .keys(ns::SENDER_KEY_DEVICES, &format!("{group_jid}{SEP}"))
            .await
            .map_err(db_err)?;
        let writes = keys
            .into_iter()
            .map(|k| Write::delete(ns::SENDER_KEY_DEVICES, k))
            .collect();
        self.batch(writes).await
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        if device_jids.is_empty() {
            return Ok(());
        }
        let keys = self
            .kv
            .keys(ns::SENDER_KEY_DEVICES, "")
            .await
            .map_err(db_err)?;
        let writes = keys
            .into_iter()
            .filter(|k| {
                k.split_once(SEP)
                    .is_some_and(|(_, device)| device_jids.contains(&device))
            })
            .map(|k| Write::delete(ns::SENDER_KEY_DEVICES, k))
            .collect();
        self.batch(writes).await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.kv
            .clear(Some(ns::SENDER_KEY_DEVICES))
            .await
            .map_err(db_err)
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.get_decoded(ns::LID, lid).await
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        let Some(lid) = self.get(ns::PN, phone).await? else {
            return Ok(None);
        };
        let lid = String::from_utf8(lid).map_err(|_| invalid("LID"))?;
        self.get_decoded(ns::LID, &lid).await
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let _rmw = self.rmw.lock().await;
        let lids: Vec<&str> = entries.iter().map(|e| e.lid.as_str()).collect();
        let stored = self.kv.get_many(ns::LID, &lids).await.map_err(db_err)?;
        // The phone each LID maps to, as the batch goes.
        let mut current: HashMap<String, String> = HashMap::new();
        for (lid, v) in stored {
            let old: LidPnMappingEntry = decode(&v.value)?;
            current.insert(lid, old.phone_number);
        }
        let mut writes = Vec::with_capacity(entries.len() * 3);
        for e in entries {
            // A LID that moved to another number no longer answers for the old one.
            if let Some(old_phone) = current.get(e.lid.as_str())
                && *old_phone != e.phone_number
            {
                writes.push(Write::delete(ns::PN, old_phone.clone()));
            }
            writes.push(Write::put(
                ns::PN,
                e.phone_number.clone(),
                e.lid.clone().into_bytes(),
            ));
            writes.push(Write::put(ns::LID, e.lid.clone(), encode(e)?));
            current.insert(e.lid.clone(), e.phone_number.clone());
        }
        self.batch(writes).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.kv
            .list(ns::LID)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|(_, v)| decode(&v.value))
            .collect()
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.put(ns::BASE_KEY, &key2(address, message_id), base_key.to_vec())
            .await
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        Ok(self
            .get(ns::BASE_KEY, &key2(address, message_id))
            .await?
            .is_some_and(|stored| stored == current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.delete(ns::BASE_KEY, &key2(address, message_id)).await
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.put(ns::DEVICES, &record.user.clone(), encode(&record)?)
            .await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let writes = records
            .iter()
            .map(|r| Ok(Write::put(ns::DEVICES, r.user.clone(), encode(r)?)))
            .collect::<Result<Vec<_>>>()?;
        self.batch(writes).await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.get_decoded(ns::DEVICES, user).await
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.delete(ns::DEVICES, user).await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get(ns::GROUP_META, group_jid).await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.put(ns::GROUP_META, group_jid, blob.to_vec()).await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.delete(ns::GROUP_META, group_jid).await
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.get_decoded(ns::TC_TOKEN, jid).await
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.put(ns::TC_TOKEN, jid, encode(entry)?).await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.delete(ns::TC_TOKEN, jid).await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        self.kv.keys(ns::TC_TOKEN, "").await.map_err(db_err)
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        self.delete_where(ns::TC_TOKEN, |v| {
            // Kept while either the received token or our sender bucket is still live.
            let entry: TcTokenEntry = decode(v)?;
            let token_live = !entry.token.is_empty() && entry.token_timestamp >= token_cutoff;
            let sender_live = entry.sender_timestamp.is_some_and(|ts| ts >= sender_cutoff);
            Ok(!(token_live || sender_live))
        })
        .await
    }

    async fn touch_tc_token_sender_timestamp(
        &self,
        jid: &str,
        sender_timestamp: i64,
    ) -> Result<()> {
        let _rmw = self.rmw.lock().await;
        let entry = match self.get_tc_token(jid).await? {
            Some(existing) => TcTokenEntry {
                sender_timestamp: Some(
                    existing
                        .sender_timestamp
                        .map_or(sender_timestamp, |e| e.max(sender_timestamp)),
                ),
                ..existing
            },
            None => TcTokenEntry {
                token: Vec::new(),
                token_timestamp: sender_timestamp,
                sender_timestamp: Some(sender_timestamp),
            },
        };
        self.put_tc_token(jid, &entry).await
    }

    async fn store_received_tc_token(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        let _rmw = self.rmw.lock().await;
        let existing = self.get_tc_token(jid).await?;
        // Newer wins; a placeholder never blocks the first real token.
        if let Some(e) = &existing
            && !e.token.is_empty()
            && token_timestamp < e.token_timestamp
        {
            return Ok(());
        }
        let entry = TcTokenEntry {
            token: token.to_vec(),
            token_timestamp,
            sender_timestamp: existing.and_then(|e| e.sender_timestamp),
        };
        self.put_tc_token(jid, &entry).await
    }

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        self.put(
            ns::SENT,
            &key2(chat_jid, message_id),
            stamped(now_secs(), payload),
        )
        .await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        let key = key2(chat_jid, message_id);
        // Taken once: two retries racing for the same payload must not both get it.
        let _rmw = self.rmw.lock().await;
        let Some(v) = self.get(ns::SENT, &key).await? else {
            return Ok(None);
        };
        self.delete(ns::SENT, &key).await?;
        Ok(Some(unstamp(&v)?.1.to_vec()))
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_where(ns::SENT, |v| Ok(unstamp(v)?.0 < cutoff_timestamp))
            .await
    }

    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        self.put(
            ns::PENDING_INBOUND,
            &key3(chat, sender, id),
            stamped(now_secs(), message),
        )
        .await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.get(ns::PENDING_INBOUND, &key3(chat, sender, id))
            .await?
            .map(|v| Ok(unstamp(&v)?.1.to_vec()))
            .transpose()
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete(ns::PENDING_INBOUND, &key3(chat, sender, id))
            .await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_where(
            ns::PENDING_INBOUND,
            |v| Ok(unstamp(v)?.0 < cutoff_timestamp),
        )
        .await
    }

    async fn store_pending_inbound_batch(
        &self,
        rows: &[whatsapp_rust::wacore::store::traits::PendingInboundRow<'_>],
    ) -> Result<()> {
        let now = now_secs();
        let writes = rows
            .iter()
            .map(|r| {
                Write::put(
                    ns::PENDING_INBOUND,
                    key3(r.chat, r.sender, r.id),
                    stamped(now, r.message),
                )
            })
            .collect();
        self.batch(writes).await
    }

    async fn delete_pending_inbound_batch(
        &self,
        keys: &[whatsapp_rust::wacore::store::traits::PendingInboundKey<'_>],
    ) -> Result<()> {
        let writes = keys
            .iter()
            .map(|k| Write::delete(ns::PENDING_INBOUND, key3(k.chat, k.sender, k.id)))
            .collect();
        self.batch(writes).await
    }
}
