//! A contact's phone: a WhatsApp account (one device) with its own Signal identity that
//! writes to the linked companion and reads what the companion sends it.
//!
//! It sets up its sessions with `wacore-libsignal` like any client: from the pre-key bundle
//! the companion uploaded (`<iq xmlns="encrypt"><registration>…<list>…<skey>…`), kept by the
//! fake as [`Upload`], it runs X3DH (`process_prekey_bundle`) and encrypts padded `wa::Message`
//! plaintexts; what the companion encrypts to the contact (from the bundle the fake hands out
//! for it) it decrypts with `message_decrypt`.

use std::{collections::HashMap, convert::Infallible};

use anyhow::Context;
use chacha20poly1305::aead::rand_core;
use whatsapp_rust::{
    wacore::{
        libsignal::protocol::{
            CiphertextMessage, Direction, GenericSignedPreKey, IdentityChange, IdentityKey,
            IdentityKeyPair, IdentityKeyStore, KeyPair, PreKeyBundle, PreKeyId, PreKeyRecord,
            PreKeySignalMessage, PreKeyStore, ProtocolAddress, SessionRecord, SessionStore,
            SignalMessage, SignalProtocolError, SignedPreKeyId, SignedPreKeyRecord,
            SignedPreKeyStore, Timestamp, UsePQRatchet, message_decrypt, message_encrypt,
            process_prekey_bundle,
        },
        messages::{MessageUtils, decode_plaintext},
    },
    wacore_binary::{Node, NodeContent, builder::NodeBuilder},
    waproto::whatsapp as wa,
};

use super::{SERVER, key_pair};

type SigResult<T> = Result<T, SignalProtocolError>;

/// The CSPRNG `wacore-libsignal` wants (`rand` 0.10's traits, reached through
/// `chacha20poly1305`'s `rand_core`), drawing from the workspace's `rand`.
pub(super) struct Rng10;

impl rand_core::TryRng for Rng10 {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(rand::random())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(rand::random())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Rng10 {}

/// The keys a companion uploaded (`<iq xmlns="encrypt" type="set">`): what the fake hands
/// out as its pre-key bundle.
#[derive(Clone, Debug)]
pub struct Upload {
    pub registration_id: u32,
    pub identity: [u8; 32],
    /// `(id, public key, signature)` of the signed pre-key.
    pub signed: (u32, [u8; 32], Vec<u8>),
    /// One-time pre-keys not handed out yet, `(id, public key)`.
    pub one_time: Vec<(u32, [u8; 32])>,
}

impl Upload {
    /// The upload an `<iq xmlns="encrypt">` with `<registration>`, `<identity>`, `<list>` and
    /// `<skey>` carries.
    pub fn parse(iq: &Node) -> anyhow::Result<Self> {
        let registration = bytes(iq.get_optional_child("registration"), "registration")?;
        let identity = bytes(iq.get_optional_child("identity"), "identity")?;
        let skey = iq.get_optional_child("skey").context("no <skey>")?;
        let one_time = iq
            .get_optional_child("list")
            .map(|l| l.get_children_by_tag("key").map(key).collect())
            .transpose()?
            .unwrap_or_default();
        let (id, public) = key(skey)?;
        let signature = bytes(skey.get_optional_child("signature"), "signature")?.to_vec();
        Ok(Self {
            registration_id: u32::from_be_bytes(registration.try_into()?),
            identity: identity.try_into()?,
            signed: (id, public, signature),
            one_time,
        })
    }

    /// A bundle for device `device`, with the next one-time pre-key (used up).
    pub fn take_bundle(&mut self, device: u16) -> anyhow::Result<PreKeyBundle> {
        let one_time = (!self.one_time.is_empty()).then(|| self.one_time.remove(0));
        let (id, public, signature) = &self.signed;
        Ok(PreKeyBundle::new(
            self.registration_id,
            u32::from(device).into(),
            one_time
                .map(|(id, k)| anyhow::Ok((id.into(), djb(&k)?)))
                .transpose()?,
            (*id).into(),
            djb(public)?,
            signature.clone(),
            IdentityKey::new(djb(&self.identity)?),
        )?)
    }
}

/// `<key><id>…</id><value>…</value></key>` (also `<skey>`): a 3-byte id and a 32-byte key.
fn key(node: &Node) -> anyhow::Result<(u32, [u8; 32])> {
    let id = bytes(node.get_optional_child("id"), "key id")?;
    let value = bytes(node.get_optional_child("value"), "key value")?;
    anyhow::ensure!(id.len() == 3, "a {}-byte key id", id.len());
    Ok((
        u32::from_be_bytes([0, id[0], id[1], id[2]]),
        value.try_into()?,
    ))
}

fn bytes<'a>(node: Option<&'a Node>, what: &str) -> anyhow::Result<&'a [u8]> {
    match node.and_then(|n| n.content.as_ref()) {
        Some(NodeContent::Bytes(b)) => Ok(b),
        _ => anyhow::bail!("no <{what}> bytes"),
    }
}

fn djb(key: &[u8; 32]) -> anyhow::Result<whatsapp_rust::wacore::libsignal::protocol::PublicKey> {
    Ok(whatsapp_rust::wacore::libsignal::protocol::PublicKey::from_djb_public_key_bytes(key)?)
}

/// A contact: a phone number with a name and its own Signal keys and sessions.
pub struct Contact {
    /// Digits with the country code (the user of its JID).
    pub number: String,
    /// Its push name (`notify`).
    pub name: String,
    registration_id: u32,
    identity: Identities,
    sessions: Sessions,
    pre_keys: PreKeys,
    signed: SignedPreKeys,
    signed_pair: KeyPair,
    signed_signature: Vec<u8>,
    /// One-time pre-keys it hands out, by id, until used.
    one_time: Vec<(u32, KeyPair)>,
}

/// The signed pre-key's id on every contact.
const SIGNED_ID: u32 = 1;

impl Contact {
    /// A contact with fresh keys and a few one-time pre-keys.
    pub fn new(number: &str, name: &str) -> Self {
        let identity = IdentityKeyPair::from(key_pair());
        let signed_pair = key_pair();
        let signed_signature = identity
            .private_key()
            .calculate_signature(&signed_pair.public_key.serialize(), &mut Rng10)
            .expect("signing the signed pre-key")
            .to_vec();
        let mut signed = SignedPreKeys::default();
        signed.0.insert(
            SIGNED_ID.into(),
            SignedPreKeyRecord::new(
                SIGNED_ID.into(),
                Timestamp::from_epoch_millis(0),
                &signed_pair,
                &signed_signature,
            ),
        );
        let one_time: Vec<(u32, KeyPair)> = (1..=5).map(|id| (id, key_pair())).collect();
        let mut pre_keys = PreKeys::default();
        for (id, kp) in &one_time {
            pre_keys
                .0
                .insert((*id).into(), PreKeyRecord::new((*id).into(), kp));
        }
        let registration_id = rand::random::<u32>() % 16_380 + 1;
        Self {
            number: number.to_owned(),
            name: name.to_owned(),
            registration_id,
            identity: Identities {
                own: identity,
                registration_id,
                known: HashMap::new(),
            },
            sessions: Sessions::default(),
            pre_keys,
            signed,
            signed_pair,
            signed_signature,
            one_time,
        }
    }

    /// `<number>@s.whatsapp.net`.
    pub fn jid(&self) -> String {
        format!("{}@{SERVER}", self.number)
    }

    /// Whether it has a session with `to` already.
    pub fn has_session(&self, to: &ProtocolAddress) -> bool {
        self.sessions.0.contains_key(to)
    }

    /// Starts a session with `to` from its pre-key bundle.
    pub async fn start_session(
        &mut self,
        to: &ProtocolAddress,
        bundle: &PreKeyBundle,
    ) -> anyhow::Result<()> {
        process_prekey_bundle(
            to,
            &mut self.sessions,
            &mut self.identity,
            bundle,
            &mut Rng10,
            UsePQRatchet::No,
        )
        .await?;
        Ok(())
    }

    /// `message` encrypted to `to` as an `<enc v="2">` node (`pkmsg` while the session is
    /// not acknowledged yet, else `msg`), its plaintext padded as WhatsApp pads.
    pub async fn encrypt(
        &mut self,
        to: &ProtocolAddress,
        message: &wa::Message,
    ) -> anyhow::Result<Node> {
        let padded = MessageUtils::encode_and_pad(message);
        let sealed = message_encrypt(&padded, to, &mut self.sessions, &mut self.identity).await?;
        let kind = match &sealed {
            CiphertextMessage::PreKeySignalMessage(_) => "pkmsg",
            CiphertextMessage::SignalMessage(_) => "msg",
            other => anyhow::bail!("unexpected ciphertext {:?}", other.message_type()),
        };
        Ok(NodeBuilder::new("enc")
            .attr("v", "2")
            .attr("type", kind)
            .bytes(sealed.serialize().to_vec())
            .build())
    }

    /// Decrypts an `<enc>` node `from` sent: the `wa::Message` inside.
    pub async fn decrypt(
        &mut self,
        from: &ProtocolAddress,
        enc: &Node,
    ) -> anyhow::Result<wa::Message> {
        let kind = enc
            .attrs
            .get("type")
            .map(|v| v.as_str().into_owned())
            .unwrap_or_default();
        let body = bytes(Some(enc), "enc")?;
        let message = match kind.as_str() {
            "pkmsg" => CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(body)?),
            "msg" => CiphertextMessage::SignalMessage(SignalMessage::try_from(body)?),
            other => anyhow::bail!("an <enc type={other:?}>"),
        };
        let plain = message_decrypt(
            &message,
            from,
            &mut self.sessions,
            &mut self.identity,
            &mut self.pre_keys,
            &self.signed,
            &mut Rng10,
            UsePQRatchet::No,
        )
        .await?;
        let version = enc
            .attrs
            .get("v")
            .and_then(|v| v.as_str().parse().ok())
            .unwrap_or(2);
        decode_plaintext(&plain.plaintext, version)
    }

    /// The `<user jid=…>` of a pre-key fetch answer for its device 0, with the next one-time
    /// pre-key.
    pub fn bundle_node(&mut self) -> Node {
        let bytes3 = |id: u32| id.to_be_bytes()[1..].to_vec();
        let mut keys = vec![
            NodeBuilder::new("registration")
                .bytes(self.registration_id.to_be_bytes().to_vec())
                .build(),
            NodeBuilder::new("type").bytes(vec![5u8]).build(),
            NodeBuilder::new("identity")
                .bytes(
                    self.identity
                        .own
                        .identity_key()
                        .public_key()
                        .public_key_bytes()
                        .to_vec(),
                )
                .build(),
        ];
        if !self.one_time.is_empty() {
            let (id, kp) = self.one_time.remove(0);
            keys.push(
                NodeBuilder::new("key")
                    .children([
                        NodeBuilder::new("id").bytes(bytes3(id)).build(),
                        NodeBuilder::new("value")
                            .bytes(kp.public_key.public_key_bytes().to_vec())
                            .build(),
                    ])
                    .build(),
            );
        }
        keys.push(
            NodeBuilder::new("skey")
                .children([
                    NodeBuilder::new("id").bytes(bytes3(SIGNED_ID)).build(),
                    NodeBuilder::new("value")
                        .bytes(self.signed_pair.public_key.public_key_bytes().to_vec())
                        .build(),
                    NodeBuilder::new("signature")
                        .bytes(self.signed_signature.clone())
                        .build(),
                ])
                .build(),
        );
        NodeBuilder::new("user")
            .attr("jid", super::iq::jid(&self.jid()))
            .children(keys)
            .build()
    }
}

struct Identities {
    own: IdentityKeyPair,
    registration_id: u32,
    known: HashMap<ProtocolAddress, IdentityKey>,
}

#[async_trait::async_trait]
impl IdentityKeyStore for Identities {
    async fn get_identity_key_pair(&self) -> SigResult<IdentityKeyPair> {
        Ok(self.own.clone())
    }

    async fn get_local_registration_id(&self) -> SigResult<u32> {
        Ok(self.registration_id)
    }

    async fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> SigResult<IdentityChange> {
        let changed = self.known.insert(address.clone(), *identity);
        Ok(IdentityChange::from_changed(
            changed.is_some_and(|old| old != *identity),
        ))
    }

    async fn is_trusted_identity(
        &self,
        _: &ProtocolAddress,
        _: &IdentityKey,
        _: Direction,
    ) -> SigResult<bool> {
        Ok(true)
    }

    async fn get_identity(&self, address: &ProtocolAddress) -> SigResult<Option<IdentityKey>> {
        Ok(self.known.get(address).copied())
    }
}

#[derive(Default)]
struct Sessions(HashMap<ProtocolAddress, SessionRecord>);

#[async_trait::async_trait]
impl SessionStore for Sessions {
    async fn load_session(&self, address: &ProtocolAddress) -> SigResult<Option<SessionRecord>> {
        Ok(self.0.get(address).cloned())
    }

    async fn has_session(&self, address: &ProtocolAddress) -> SigResult<bool> {
        Ok(self.0.contains_key(address))
    }

    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: SessionRecord,
    ) -> SigResult<()> {
        self.0.insert(address.clone(), record);
        Ok(())
    }
}

#[derive(Default)]
struct PreKeys(HashMap<PreKeyId, PreKeyRecord>);

#[async_trait::async_trait]
impl PreKeyStore for PreKeys {
    async fn get_pre_key(&self, id: PreKeyId) -> SigResult<PreKeyRecord> {
        self.0
            .get(&id)
            .cloned()
            .ok_or(SignalProtocolError::InvalidPreKeyId)
    }

    async fn save_pre_key(&mut self, id: PreKeyId, record: &PreKeyRecord) -> SigResult<()> {
        self.0.insert(id, record.clone());
        Ok(())
    }

    async fn remove_pre_key(&mut self, id: PreKeyId) -> SigResult<()> {
        self.0.remove(&id);
        Ok(())
    }
}

#[derive(Default)]
struct SignedPreKeys(HashMap<SignedPreKeyId, SignedPreKeyRecord>);

#[async_trait::async_trait]
impl SignedPreKeyStore for SignedPreKeys {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> SigResult<SignedPreKeyRecord> {
        self.0
            .get(&id)
            .cloned()
            .ok_or(SignalProtocolError::InvalidSignedPreKeyId)
    }

    async fn save_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
        record: &SignedPreKeyRecord,
    ) -> SigResult<()> {
        self.0.insert(id, record.clone());
        Ok(())
    }
}
