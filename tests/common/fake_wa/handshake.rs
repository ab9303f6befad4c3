//! The Noise handshakes, responder side.

use anyhow::{Context, bail};
use whatsapp_rust::{
    buffa::{self, Message as _},
    wacore::noise::NoiseHandshake,
    wacore_binary::consts::{
        NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER,
    },
    waproto::whatsapp::{self as wa, cert_chain::noise_certificate},
};

use super::{
    Pattern, key_pair, key32, public,
    server::Server,
    transport::{Link, Wire},
};

impl Server {
    /// The responder side of Noise XX after the client's `-> e`: `<- e, ee, s, es` with the
    /// certificate chain, then the client's `-> s, se` with its `ClientPayload`.
    pub(super) async fn xx(
        &self,
        wire: Wire,
        client_eph: &[u8; 32],
    ) -> anyhow::Result<(Link, [u8; 32], wa::ClientPayload)> {
        let noise = NoiseHandshake::new(NOISE_PATTERN_XX, &WA_CONN_HEADER)?;
        self.xx_from(noise, wire, client_eph).await
    }

    /// XX from our `ServerHello` on (shared by XX and XXfallback, which differ only in the
    /// protocol name the transcript starts from).
    async fn xx_from(
        &self,
        mut noise: NoiseHandshake,
        mut wire: Wire,
        client_eph: &[u8; 32],
    ) -> anyhow::Result<(Link, [u8; 32], wa::ClientPayload)> {
        noise.authenticate(client_eph);
        let eph = key_pair();
        noise.authenticate(&public(&eph));
        noise.mix_shared_secret(eph.private_key.serialize(), client_eph)?;
        let static_enc = noise.encrypt(&public(&self.static_kp))?;
        noise.mix_shared_secret(self.static_kp.private_key.serialize(), client_eph)?;
        let payload_enc = noise.encrypt(&self.cert_chain)?;
        let server_hello = wa::HandshakeMessage {
            server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
                ephemeral: Some(public(&eph).to_vec()),
                r#static: Some(static_enc),
                payload: Some(payload_enc),
                ..Default::default()
            }),
            ..Default::default()
        };
        wire.send_frame(&server_hello.encode_to_vec()).await?;

        // -> s, se (and the ClientPayload)
        let Some(finish) = wire.frame().await? else {
            bail!("closed before the ClientFinish");
        };
        let finish = wa::HandshakeMessage::decode_from_slice(&finish)?
            .client_finish
            .into_option()
            .context("no ClientFinish")?;
        let client_static = noise.decrypt(finish.r#static.as_deref().context("no static")?)?;
        let client_static = key32(Some(&client_static), "client static")?;
        noise.mix_shared_secret(eph.private_key.serialize(), &client_static)?;
        let payload = noise.decrypt(finish.payload.as_deref().context("no payload")?)?;
        let payload = wa::ClientPayload::decode_from_slice(&payload)?;
        Ok((Link::new(wire, noise)?, client_static, payload))
    }

    /// The responder side of Noise IK: the client's `-> e, es, s, ss` already carries its
    /// static key and `ClientPayload`; we answer `<- e, ee, se` with the certificate chain.
    /// When the client's message does not decrypt (it cached another server's key), we answer
    /// as WhatsApp does, with a full `ServerHello` that switches it to XXfallback.
    pub(super) async fn ik(
        &self,
        wire: Wire,
        client_eph: &[u8; 32],
        static_enc: &[u8],
        payload_enc: &[u8],
    ) -> anyhow::Result<(Link, [u8; 32], wa::ClientPayload, Pattern)> {
        let mut noise = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER)?;
        let ours = self.static_kp.private_key.serialize();
        noise.authenticate(&public(&self.static_kp));
        noise.authenticate(client_eph);
        noise.mix_shared_secret(ours, client_eph)?;
        let Ok(client_static) = noise.decrypt(static_enc) else {
            let noise = NoiseHandshake::new(NOISE_PATTERN_XXFALLBACK, &WA_CONN_HEADER)?;
            let (link, s, p) = self.xx_from(noise, wire, client_eph).await?;
            return Ok((link, s, p, Pattern::XxFallback));
        };
        let client_static = key32(Some(&client_static), "client static")?;
        noise.mix_shared_secret(ours, &client_static)?;
        let payload = noise.decrypt(payload_enc)?;
        let payload = wa::ClientPayload::decode_from_slice(&payload)?;

        let eph = key_pair();
        noise.authenticate(&public(&eph));
        noise.mix_shared_secret(eph.private_key.serialize(), client_eph)?;
        noise.mix_shared_secret(eph.private_key.serialize(), &client_static)?;
        let payload_out = noise.encrypt(&self.cert_chain)?;
        let server_hello = wa::HandshakeMessage {
            server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
                ephemeral: Some(public(&eph).to_vec()),
                payload: Some(payload_out),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut wire = wire;
        wire.send_frame(&server_hello.encode_to_vec()).await?;
        Ok((Link::new(wire, noise)?, client_static, payload, Pattern::Ik))
    }
}

/// A `CertChain` shaped like WhatsApp's (intermediate issued by serial 0, leaf issued by the
/// intermediate and carrying `leaf_key`), with zero signatures.
pub(super) fn cert_chain(leaf_key: &[u8; 32]) -> Vec<u8> {
    let cert = |details: noise_certificate::Details| wa::cert_chain::NoiseCertificate {
        details: Some(details.encode_to_vec()),
        signature: Some(vec![0; 64]),
    };
    let now = chrono::Utc::now().timestamp() as u64;
    wa::CertChain {
        intermediate: buffa::MessageField::some(cert(noise_certificate::Details {
            serial: Some(1),
            issuer_serial: Some(0),
            key: Some(vec![0xCC; 32]),
            not_before: Some(now - 3600),
            not_after: Some(now + 86_400),
        })),
        leaf: buffa::MessageField::some(cert(noise_certificate::Details {
            serial: Some(2),
            issuer_serial: Some(1),
            key: Some(leaf_key.to_vec()),
            not_before: Some(now - 3600),
            not_after: Some(now + 86_400),
        })),
    }
    .encode_to_vec()
}
