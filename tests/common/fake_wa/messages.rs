//! Messages between the fake's contacts and a linked companion.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use whatsapp_rust::{
    wacore::types::jid::JidExt,
    wacore_binary::{Jid, Node, builder::NodeBuilder},
    waproto::whatsapp as wa,
};

use super::{
    Companion, Contact, FakeWhatsApp, SERVER,
    iq::{attr, jid},
};

impl FakeWhatsApp {
    /// Adds a contact the fake plays: `number` (digits with the country code) with the push
    /// name `name`, with fresh Signal keys.
    pub fn add_contact(&self, number: &str, name: &str) {
        let contact = Arc::new(tokio::sync::Mutex::new(Contact::new(number, name)));
        self.lock().contacts.insert(number.to_owned(), contact);
    }

    /// The contact `from` writes `text` to the companion `to`: `<message from=… id=… t=…
    /// type="text" notify=…><enc v="2" type="pkmsg|msg">` on the connection it is logged in
    /// on. The first message sets up the contact's session from the companion's uploaded
    /// pre-key bundle (waiting up to 10 s for the upload).
    pub async fn send_text(
        &self,
        from: &str,
        to: &Companion,
        id: &str,
        text: &str,
    ) -> anyhow::Result<()> {
        let message = wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        self.send_message(from, to, id, "text", &message).await
    }

    /// Like [`FakeWhatsApp::send_text`], with any message (`kind` is the stanza's `type`).
    pub async fn send_message(
        &self,
        from: &str,
        to: &Companion,
        id: &str,
        kind: &str,
        message: &wa::Message,
    ) -> anyhow::Result<()> {
        let to_jid = to.jid();
        let address = to_jid.parse::<Jid>()?.to_protocol_address();
        let contact = self
            .lock()
            .contacts
            .get(from)
            .cloned()
            .with_context(|| format!("{from} is not a contact of the fake"))?;
        let mut contact = contact.lock().await;
        if !contact.has_session(&address) {
            let bundle = self.bundle_of(&to_jid, to.device).await?;
            contact.start_session(&address, &bundle).await?;
        }
        let enc = contact.encrypt(&address, message).await?;
        let node = NodeBuilder::new("message")
            .attr("from", jid(&contact.jid()))
            .attr("id", id.to_owned())
            .attr("t", chrono::Utc::now().timestamp().to_string())
            .attr("type", kind.to_owned())
            .attr("notify", contact.name.clone())
            .children([enc])
            .build();
        self.relay(to, node)
    }

    /// What the companion `from` sent in `message` (a `<message to=… id=…>` the fake saw),
    /// to the fake's contacts: each `<enc>` addressed to one (directly under the message, or
    /// under `<participants><to jid=…>`) decrypted by that contact, as `(its JID, the
    /// message)`. Copies for anyone else (the companion's own devices) are skipped.
    pub async fn read_sent(
        &self,
        from: &Companion,
        message: &Node,
    ) -> anyhow::Result<Vec<(String, wa::Message)>> {
        anyhow::ensure!(message.tag == "message", "not a <message>: {message:?}");
        let address = from.jid().parse::<Jid>()?.to_protocol_address();
        let to = attr(message, "to").context("a <message> without a `to`")?;
        let mut encs: Vec<(String, &Node)> = message
            .get_children_by_tag("enc")
            .map(|e| (to.clone(), e))
            .collect();
        if let Some(participants) = message.get_optional_child("participants") {
            for recipient in participants.get_children_by_tag("to") {
                let jid = attr(recipient, "jid").context("a <to> without a `jid`")?;
                encs.extend(
                    recipient
                        .get_children_by_tag("enc")
                        .map(|e| (jid.clone(), e)),
                );
            }
        }
        let mut read = Vec::new();
        for (jid, enc) in encs {
            let number = jid.split(['@', ':']).next().unwrap_or_default();
            let Some(contact) = self.lock().contacts.get(number).cloned() else {
                continue;
            };
            let message = contact
                .lock()
                .await
                .decrypt(&address, enc)
                .await
                .with_context(|| format!("{number} decrypting {enc:?}"))?;
            read.push((jid, message));
        }
        Ok(read)
    }

    /// The contact `from` confirms the message `id` the companion `to` sent it: `<receipt
    /// from=… id=… t=…>` (delivered) with `kind` `None`, or with `type=kind` (`read`,
    /// `played`).
    pub fn send_receipt(
        &self,
        from: &str,
        to: &Companion,
        id: &str,
        kind: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut receipt = NodeBuilder::new("receipt")
            .attr("from", jid(&format!("{from}@{SERVER}")))
            .attr("id", id.to_owned())
            .attr("t", chrono::Utc::now().timestamp().to_string());
        if let Some(kind) = kind {
            receipt = receipt.attr("type", kind.to_owned());
        }
        self.relay(to, receipt.build())
    }

    /// Sends `node` on the connection the companion `to` is logged in on.
    fn relay(&self, to: &Companion, node: Node) -> anyhow::Result<()> {
        let to_jid = to.jid();
        let state = self.lock();
        let conn = *state
            .online
            .get(&to_jid)
            .with_context(|| format!("{to_jid} never logged in"))?;
        state
            .outboxes
            .get(&conn)
            .with_context(|| format!("{to_jid}'s connection {conn} is closed"))?
            .send(node)
            .map_err(|_| anyhow::anyhow!("connection {conn} closed"))
    }

    /// A pre-key bundle of the companion `jid` from its upload (waits up to 10 s for one),
    /// using up one of its one-time pre-keys.
    async fn bundle_of(
        &self,
        jid: &str,
        device: u16,
    ) -> anyhow::Result<whatsapp_rust::wacore::libsignal::protocol::PreKeyBundle> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(upload) = self.lock().uploads.get_mut(jid) {
                return upload.take_bundle(device);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{jid} uploaded no pre-keys"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
