//! Linking: a phone scanning a QR code (`<pair-success>` with a signed device identity) and the
//! companion countersigning it; a companion asking for a code to type on the phone instead.

use anyhow::{Context, bail};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use whatsapp_rust::{
    buffa::Message as _,
    wacore::{crypto::calculate_curve_signature, libsignal::protocol::PublicKey},
    wacore_binary::{Node, NodeContent, builder::NodeBuilder},
    waproto::whatsapp::{self as wa, ADVEncryptionType},
};

use super::{
    Companion, FakeWhatsApp, PAIR_DEVICE_ID, Phone, SERVER, Seen,
    iq::{attr, jid},
    key32,
    server::{Server, Session},
};

/// ADV signature prefixes (WhatsApp's `ADV_PREFIX_*`): the account (phone) signs
/// `[6, 0] ‖ details ‖ companion identity`; the companion countersigns
/// `[6, 1] ‖ details ‖ companion identity ‖ account key`.
const ADV_ACCOUNT_SIGNATURE: [u8; 2] = [6, 0];
const ADV_DEVICE_SIGNATURE: [u8; 2] = [6, 1];

impl FakeWhatsApp {
    /// `phone` scans a QR `code` (`ref,noise key,identity key,ADV secret,client type`, as
    /// `GET …/qr` shows it): the server sends the connection that was handed that ref a
    /// `<pair-success>` linking it as the phone's next device, and returns that companion.
    ///
    /// The device identity is what a phone produces: an `ADVDeviceIdentity` (key index =
    /// device number, E2EE), signed by the phone's identity key over `[6, 0] ‖ details ‖
    /// companion identity key`, wrapped with an HMAC-SHA256 keyed by the code's ADV secret.
    pub fn scan(&self, code: &str, phone: &Phone) -> anyhow::Result<Companion> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let parts: Vec<&str> = code.split(',').collect();
        let [pairing_ref, noise, identity, adv, ..] = parts[..] else {
            bail!("not a pairing QR code: {code}");
        };
        let noise_key = key32(Some(&b64.decode(noise)?), "QR noise")?;
        let identity_key = key32(Some(&b64.decode(identity)?), "QR identity")?;
        let adv_secret = b64.decode(adv)?;

        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let conn = *state
            .refs
            .get(pairing_ref)
            .with_context(|| format!("no connection was handed the ref {pairing_ref}"))?;
        let outbox = state
            .outboxes
            .get(&conn)
            .with_context(|| format!("connection {conn} (ref {pairing_ref}) is closed"))?
            .clone();
        let device = {
            let last = state.last_device.entry(phone.number.clone()).or_insert(0);
            *last += 1;
            *last
        };

        let details = wa::ADVDeviceIdentity {
            raw_id: Some(rand::random()),
            timestamp: Some(chrono::Utc::now().timestamp() as u64),
            key_index: Some(u32::from(device)),
            account_type: Some(ADVEncryptionType::E2EE),
            device_type: Some(ADVEncryptionType::E2EE),
        }
        .encode_to_vec();
        let account_signature = calculate_curve_signature(
            &phone.identity.private_key,
            &[&ADV_ACCOUNT_SIGNATURE[..], &details, &identity_key].concat(),
        )
        .map_err(|e| anyhow::anyhow!("signing the device identity: {e}"))?;
        let signed = wa::ADVSignedDeviceIdentity {
            details: Some(details.clone()),
            account_signature_key: Some(phone.identity_key().to_vec()),
            account_signature: Some(account_signature.to_vec()),
            device_signature: None,
        }
        .encode_to_vec();
        let mut mac = Hmac::<Sha256>::new_from_slice(&adv_secret)?;
        mac.update(&signed);
        let device_identity = wa::ADVSignedDeviceIdentityHMAC {
            details: Some(signed),
            hmac: Some(mac.finalize().into_bytes().to_vec()),
            account_type: Some(ADVEncryptionType::E2EE),
        }
        .encode_to_vec();

        let companion = Companion {
            number: phone.number.clone(),
            lid: phone.lid.clone(),
            device,
            noise_key,
            identity_key,
            account_key: phone.identity_key(),
            details,
        };
        let id = format!("fake-pair-success-c{conn}-{device}");
        let node = NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("xmlns", "md")
            .attr("t", chrono::Utc::now().timestamp().to_string())
            .children([NodeBuilder::new("pair-success")
                .children([
                    NodeBuilder::new("device-identity")
                        .bytes(device_identity)
                        .build(),
                    NodeBuilder::new("platform")
                        .attr("name", phone.platform.clone())
                        .build(),
                    NodeBuilder::new("device")
                        .attr("jid", jid(&companion.jid()))
                        .attr("lid", jid(&companion.lid_jid()))
                        .build(),
                ])
                .build()])
            .build();
        state.offered.insert(id, (conn, companion.clone()));
        outbox
            .send(node)
            .map_err(|_| anyhow::anyhow!("connection {conn} closed"))?;
        Ok(companion)
    }
}

impl Server {
    /// The companion's answer to `<pair-success>`: `<pair-device-sign>` with its countersigned
    /// device identity (checked against the identity key of its QR code), or an error. A
    /// good one links it and ends the stream with 515, after which the client logs in anew.
    pub(super) fn pair_device_sign(
        &self,
        id: &str,
        node: &Node,
        session: &Session,
        seen: &mpsc::UnboundedSender<Seen>,
    ) -> Vec<Node> {
        let conn = session.conn;
        let Some((_, companion)) = self.state().offered.remove(id) else {
            return Vec::new();
        };
        let verdict = check_device_sign(node, &companion);
        match verdict {
            Ok(()) => {
                let jid = companion.jid();
                self.state().linked.push(companion);
                let _ = seen.send(Seen::Paired { conn, jid });
                vec![NodeBuilder::new("stream:error").attr("code", "515").build()]
            }
            Err(why) => {
                let _ = seen.send(Seen::PairRejected { conn, why });
                Vec::new()
            }
        }
    }
}

/// What a companion sent to ask for a pairing code (`<link_code_companion_reg
/// stage="companion_hello">`, WhatsApp Web's `Alt/DeviceLinkingIq.js`).
#[derive(Clone, Debug)]
pub struct LinkCodeHello {
    /// The phone's number (the user of the `jid` attribute), digits.
    pub number: String,
    /// `should_show_push_notification`.
    pub push_notification: bool,
    /// Its ephemeral public key wrapped with the code: salt (32) ‖ IV (16) ‖ AES-CTR of the
    /// key (32).
    pub wrapped_ephemeral: Vec<u8>,
    /// `companion_server_auth_key_pub`: its noise key.
    pub server_auth_key: Vec<u8>,
    /// `companion_platform_id` (the browser as a number, in ASCII).
    pub platform_id: String,
    /// `companion_platform_display` (`Browser (OS)`).
    pub platform_display: String,
}

impl LinkCodeHello {
    /// Reads a `<link_code_companion_reg stage="companion_hello">` request.
    fn parse(reg: &Node) -> Result<Self, String> {
        let bytes = |tag: &str| match reg.get_optional_child(tag).and_then(|c| c.content.as_ref()) {
            Some(NodeContent::Bytes(b)) => Ok(b.clone()),
            Some(NodeContent::String(s)) => Ok(s.as_bytes().to_vec()),
            _ => Err(format!("no <{tag}>")),
        };
        let text = |tag: &str| {
            bytes(tag).and_then(|b| String::from_utf8(b).map_err(|e| format!("<{tag}>: {e}")))
        };
        let jid = attr(reg, "jid").ok_or("no jid")?;
        let Some((number, SERVER)) = jid.split_once('@') else {
            return Err(format!("jid {jid} is not a phone number's"));
        };
        let hello = Self {
            number: number.to_owned(),
            push_notification: attr(reg, "should_show_push_notification").as_deref()
                == Some("true"),
            wrapped_ephemeral: bytes("link_code_pairing_wrapped_companion_ephemeral_pub")?,
            server_auth_key: bytes("companion_server_auth_key_pub")?,
            platform_id: text("companion_platform_id")?,
            platform_display: text("companion_platform_display")?,
        };
        if hello.wrapped_ephemeral.len() != 80 {
            return Err(format!(
                "the wrapped ephemeral key is {} bytes, not 80",
                hello.wrapped_ephemeral.len()
            ));
        }
        if hello.server_auth_key.len() != 32 {
            return Err("the server auth key is not 32 bytes".into());
        }
        if bytes("link_code_pairing_nonce")? != [0] {
            return Err("the nonce is not a single 0 byte".into());
        }
        Ok(hello)
    }
}

impl Server {
    /// The answer to a companion asking for a pairing code (`<iq xmlns="md" type="set">
    /// <link_code_companion_reg stage="companion_hello">`), `None` for any other IQ: the
    /// pairing ref, as `<iq type="result"><link_code_companion_reg><link_code_pairing_ref>`,
    /// or `bad-request` (400) for a malformed request, as WhatsApp refuses them.
    pub(super) fn link_code_hello(
        &self,
        id: &str,
        node: &Node,
        session: &Session,
        seen: &mpsc::UnboundedSender<Seen>,
    ) -> Option<Vec<Node>> {
        let reg = node.get_optional_child("link_code_companion_reg")?;
        if attr(node, "xmlns").as_deref() != Some("md")
            || attr(reg, "stage").as_deref() != Some("companion_hello")
        {
            return None;
        }
        let conn = session.conn;
        let reply = NodeBuilder::new("iq")
            .attr("from", SERVER)
            .attr("id", id.to_owned());
        let request = match LinkCodeHello::parse(reg) {
            Ok(request) => request,
            Err(why) => {
                eprintln!("[fake-wa] a bad pairing-code request: {why}");
                return Some(vec![
                    reply
                        .attr("type", "error")
                        .children([NodeBuilder::new("error")
                            .attr("code", "400")
                            .attr("text", "bad-request")
                            .build()])
                        .build(),
                ]);
            }
        };
        let pairing_ref = format!("fake-link-code-ref-c{conn}-{}", request.number).into_bytes();
        self.state()
            .link_codes
            .insert(request.number.clone(), (conn, pairing_ref.clone()));
        let _ = seen.send(Seen::PairCodeRequested {
            conn,
            request,
            pairing_ref: pairing_ref.clone(),
        });
        Some(vec![
            reply
                .attr("type", "result")
                .children([NodeBuilder::new("link_code_companion_reg")
                    .children([NodeBuilder::new("link_code_pairing_ref")
                        .bytes(pairing_ref)
                        .build()])
                    .build()])
                .build(),
        ])
    }
}

/// Checks a `<pair-device-sign><device-identity key-index=…>` answer: the identity the phone
/// signed, countersigned by the companion's identity key over `[6, 1] ‖ details ‖ companion
/// identity ‖ account key`.
fn check_device_sign(node: &Node, companion: &Companion) -> Result<(), String> {
    if attr(node, "type").as_deref() != Some("result") {
        return Err(format!("the companion refused the pairing: {node:?}"));
    }
    let identity = node
        .get_optional_child_by_tag(&["pair-device-sign", "device-identity"])
        .ok_or("no <pair-device-sign><device-identity>")?;
    let key_index = attr(identity, "key-index");
    if key_index != Some(companion.device.to_string()) {
        return Err(format!(
            "key-index {key_index:?}, device {}",
            companion.device
        ));
    }
    let Some(NodeContent::Bytes(bytes)) = &identity.content else {
        return Err("an empty <device-identity>".into());
    };
    let signed =
        wa::ADVSignedDeviceIdentity::decode_from_slice(bytes).map_err(|e| e.to_string())?;
    if signed.details.as_deref() != Some(&companion.details[..]) {
        return Err("the device identity's details changed".into());
    }
    if signed.account_signature_key.as_deref() != Some(&companion.account_key[..]) {
        return Err("the account key changed".into());
    }
    let signature = signed
        .device_signature
        .as_deref()
        .ok_or("no device signature")?;
    let message = [
        &ADV_DEVICE_SIGNATURE[..],
        &companion.details,
        &companion.identity_key,
        &companion.account_key,
    ]
    .concat();
    let key =
        PublicKey::from_djb_public_key_bytes(&companion.identity_key).map_err(|e| e.to_string())?;
    if !key.verify_signature(&message, signature) {
        return Err("the device signature does not verify with the QR code's identity key".into());
    }
    Ok(())
}

/// `<success>`: the login of a linked companion is accepted. The client reads the server time
/// (`t`) and its LID (`lid`) from it.
pub(super) fn success(companion: &Companion) -> Node {
    NodeBuilder::new("success")
        .attr("t", chrono::Utc::now().timestamp().to_string())
        .attr("lid", jid(&companion.lid_jid()))
        .attr("location", "fake")
        .attr("props", "1")
        .attr("abprops", "1")
        .attr(
            "creation",
            (chrono::Utc::now().timestamp() - 86_400).to_string(),
        )
        .build()
}

/// `<iq from="s.whatsapp.net" type="set" id=… xmlns="md"><pair-device><ref>…</ref>…`
pub(super) fn pair_device(refs: &[String]) -> Node {
    NodeBuilder::new("iq")
        .attr("from", SERVER)
        .attr("type", "set")
        .attr("id", PAIR_DEVICE_ID)
        .attr("xmlns", "md")
        .children([NodeBuilder::new("pair-device")
            .children(
                refs.iter()
                    .map(|r| NodeBuilder::new("ref").bytes(r.as_bytes()).build()),
            )
            .build()])
        .build()
}
