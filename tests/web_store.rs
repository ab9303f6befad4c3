//! The `web` provider's storage backend against the crate's reference: the same random
//! sequences of operations run on `whatsapp-rust`'s `InMemoryBackend` and on our
//! database-backed `WebStore` (SQLite, or PostgreSQL with `TEST_DATABASE_URL`), and every
//! answer must be the same. Then a restart: a fresh `WebStore` on the same rows answers the
//! same.

// Operations that return `()` are compared too (both stores must succeed): as JSON `null`.
#![allow(clippy::unit_arg)]

mod common;

use std::sync::Arc;

use common::TestApp;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;
use serde_json::{Value, json};
use wagate::{provider::web::store::WebStore, service::device_store::DbDeviceStore};
use whatsapp_rust::{
    bytes::Bytes,
    wacore::{
        appstate::{hash::HashState, processor::AppStateMutationMAC},
        store::{
            Device, InMemoryBackend,
            traits::{
                AppStateSyncKey, AppSyncStore, DeviceInfo, DeviceListRecord, DeviceStore,
                LidPnMappingEntry, MsgSecretEntry, MsgSecretStore, PendingInboundKey,
                PendingInboundRow, ProtocolStore, SignalStore, TcTokenEntry,
            },
        },
    },
};

const ADDRS: [&str; 6] = [
    "111@s.whatsapp.net",
    "111:2@s.whatsapp.net",
    "1112@s.whatsapp.net",
    "222@lid",
    "222:5@lid",
    "333.0:1@s.whatsapp.net",
];
const USERS: [&str; 5] = ["111", "11", "222", "333", "333.0"];
const GROUPS: [&str; 2] = ["120363@g.us", "120364@g.us"];
const NAMES: [&str; 2] = ["regular_low", "critical_block"];

fn pick<'a>(r: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[r.random_range(0..xs.len())]
}

fn bytes(r: &mut StdRng) -> Vec<u8> {
    let n = r.random_range(0..40);
    (0..n).map(|_| r.random()).collect()
}

fn key32(r: &mut StdRng) -> [u8; 32] {
    [r.random_range(0..3u8); 32]
}

fn j<T: Serialize>(x: T) -> Value {
    serde_json::to_value(x).unwrap()
}

fn sorted<T: Serialize>(mut xs: Vec<T>) -> Value {
    let mut vs: Vec<String> = xs.drain(..).map(|x| j(x).to_string()).collect();
    vs.sort();
    j(vs)
}

fn b(x: Option<Bytes>) -> Value {
    j(x.map(|b| b.to_vec()))
}

/// One random operation on `s`, its answer as JSON (sets sorted).
async fn op<S>(s: &S, r: &mut StdRng, now: i64, device: &Device) -> (String, Value)
where
    S: SignalStore + AppSyncStore + ProtocolStore + MsgSecretStore + DeviceStore,
{
    let k = r.random_range(0..60u32);
    let name = format!("op{k}");
    let a = pick(r, &ADDRS);
    let v = match k {
        0 => j(s.put_identity(a, key32(r)).await.unwrap()),
        1 => j(s.load_identity(a).await.unwrap()),
        2 => j(s.delete_identity(a).await.unwrap()),
        3 => {
            let batch: Vec<(Arc<str>, [u8; 32])> = (0..3)
                .map(|_| (Arc::from(pick(r, &ADDRS)), key32(r)))
                .collect();
            j(s.put_identities_batch(&batch).await.unwrap())
        }
        4 => j(s.put_session(a, &bytes(r)).await.unwrap()),
        5 => b(s.get_session(a).await.unwrap()),
        6 => j(s.delete_session(a).await.unwrap()),
        7 => j(s.has_session(a).await.unwrap()),
        8 => {
            let batch: Vec<(Arc<str>, Bytes)> = (0..3)
                .map(|_| (Arc::from(pick(r, &ADDRS)), Bytes::from(bytes(r))))
                .collect();
            j(s.put_sessions_batch(&batch).await.unwrap())
        }
        9 => j(s.has_signal_state_for_user(pick(r, &USERS)).await.unwrap()),
        10 => {
            let id = r.random_range(0..20);
            j(s.store_prekey(id, &bytes(r), r.random()).await.unwrap())
        }
        11 => {
            let batch: Vec<(u32, Bytes)> = (0..4)
                .map(|_| (r.random_range(0..20), Bytes::from(bytes(r))))
                .collect();
            j(s.store_prekeys_batch(&batch, false).await.unwrap())
        }
        12 => b(s.load_prekey(r.random_range(0..20)).await.unwrap()),
        13 => {
            let ids: Vec<u32> = (0..5).map(|_| r.random_range(0..20)).collect();
            let got = s.load_prekeys_batch(&ids).await.unwrap();
            j(got
                .into_iter()
                .map(|(i, b)| (i, b.to_vec()))
                .collect::<Vec<_>>())
        }
        14 => j(s.remove_prekey(r.random_range(0..20)).await.unwrap()),
        15 => j(s.get_max_prekey_id().await.unwrap()),
        16 => j(s.mark_prekeys_uploaded(&[1, 2, 3]).await.unwrap()),
        17 => j(s
            .store_signed_prekey(r.random_range(0..4), &bytes(r))
            .await
            .unwrap()),
        18 => j(s.load_signed_prekey(r.random_range(0..4)).await.unwrap()),
        19 => sorted(s.load_all_signed_prekeys().await.unwrap()),
        20 => j(s.remove_signed_prekey(r.random_range(0..4)).await.unwrap()),
        21 => j(s.put_sender_key(a, &bytes(r)).await.unwrap()),
        22 => j(s.get_sender_key(a).await.unwrap()),
        23 => j(s.delete_sender_key(a).await.unwrap()),
        24 => {
            let id = [r.random_range(0..4u8), 7];
            let key = AppStateSyncKey {
                key_data: bytes(r),
                fingerprint: bytes(r),
                timestamp: r.random_range(0..1000),
            };
            j(s.set_sync_key(&id, key).await.unwrap())
        }
        25 => j(s.get_sync_key(&[r.random_range(0..4u8), 7]).await.unwrap()),
        26 => j(s.get_latest_sync_key_id().await.unwrap()),
        27 => {
            let st = HashState {
                version: r.random_range(0..100),
                ..Default::default()
            };
            j(s.set_version(pick(r, &NAMES), st).await.unwrap())
        }
        28 => j(s.get_version(pick(r, &NAMES)).await.unwrap()),
        29 => {
            let macs: Vec<AppStateMutationMAC> = (0..3)
                .map(|_| AppStateMutationMAC {
                    index_mac: vec![r.random_range(0..5u8); 32],
                    value_mac: bytes(r),
                })
                .collect();
            j(s.put_mutation_macs(pick(r, &NAMES), 1, &macs)
                .await
                .unwrap())
        }
        30 => j(s
            .get_mutation_mac(pick(r, &NAMES), &[r.random_range(0..5u8); 32])
            .await
            .unwrap()),
        31 => {
            let want: Vec<[u8; 32]> = (0..3).map(|_| [r.random_range(0..5u8); 32]).collect();
            sorted(
                s.get_mutation_macs(pick(r, &NAMES), &want)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect(),
            )
        }
        32 => j(s
            .delete_mutation_macs(pick(r, &NAMES), &[vec![r.random_range(0..5u8); 32]])
            .await
            .unwrap()),
        33 => j(s.clear_mutation_macs(pick(r, &NAMES)).await.unwrap()),
        34 => {
            let entries: Vec<(&str, bool)> =
                (0..3).map(|_| (pick(r, &ADDRS), r.random())).collect();
            j(s.set_sender_key_status(pick(r, &GROUPS), &entries)
                .await
                .unwrap())
        }
        35 => sorted(s.get_sender_key_devices(pick(r, &GROUPS)).await.unwrap()),
        36 => j(s.clear_sender_key_devices(pick(r, &GROUPS)).await.unwrap()),
        37 => j(s.delete_sender_key_device_rows(&[a]).await.unwrap()),
        38 => j(if r.random_range(0..5) == 0 {
            s.clear_all_sender_key_devices().await.unwrap()
        }),
        39 => {
            let n = r.random_range(1..3);
            let entries: Vec<LidPnMappingEntry> = (0..n)
                .map(|_| LidPnMappingEntry {
                    lid: pick(r, &["900", "901", "902"]).to_owned(),
                    phone_number: pick(r, &["111", "222", "333"]).to_owned(),
                    created_at: 1,
                    updated_at: r.random_range(0..9),
                    learning_source: "usync".into(),
                })
                .collect();
            if n == 1 {
                j(s.put_lid_mapping(&entries[0]).await.unwrap())
            } else {
                j(s.put_lid_mappings(&entries).await.unwrap())
            }
        }
        40 => j(s
            .get_lid_mapping(pick(r, &["900", "901", "902"]))
            .await
            .unwrap()),
        41 => j(s
            .get_pn_mapping(pick(r, &["111", "222", "333"]))
            .await
            .unwrap()),
        42 => sorted(s.get_all_lid_mappings().await.unwrap()),
        43 => {
            let (m, k) = (pick(r, &["m1", "m2"]), [r.random_range(0..2u8)]);
            j(s.save_base_key(a, m, &k).await.unwrap())
        }
        44 => {
            let (m, k) = (pick(r, &["m1", "m2"]), [r.random_range(0..2u8)]);
            j(s.has_same_base_key(a, m, &k).await.unwrap())
        }
        45 => j(s.delete_base_key(a, pick(r, &["m1", "m2"])).await.unwrap()),
        46 => {
            let rec = DeviceListRecord {
                user: pick(r, &USERS).to_owned(),
                devices: vec![DeviceInfo::new(r.random_range(0..3), Some(1))],
                timestamp: r.random_range(0..100),
                phash: Some("ph".into()),
                raw_id: None,
            };
            j(s.update_device_lists(vec![rec.clone(), rec]).await.unwrap())
        }
        47 => j(s.get_devices(pick(r, &USERS)).await.unwrap()),
        48 => j(s.delete_devices(pick(r, &USERS)).await.unwrap()),
        49 => {
            let entry = TcTokenEntry {
                token: bytes(r),
                token_timestamp: r.random_range(0..100),
                sender_timestamp: r.random_bool(0.5).then(|| r.random_range(0..100)),
            };
            j(s.put_tc_token(a, &entry).await.unwrap())
        }
        50 => j(s.get_tc_token(a).await.unwrap()),
        51 => sorted(s.get_all_tc_token_jids().await.unwrap()),
        52 => j(s
            .delete_expired_tc_tokens(r.random_range(0..100), r.random_range(0..100))
            .await
            .unwrap()),
        53 => j(s
            .touch_tc_token_sender_timestamp(a, r.random_range(0..100))
            .await
            .unwrap()),
        54 => j(s
            .store_received_tc_token(a, &bytes(r), r.random_range(0..100))
            .await
            .unwrap()),
        55 => match r.random_range(0..4) {
            0 => j(s.store_sent_message(a, "s1", &bytes(r)).await.unwrap()),
            1 => j(s.take_sent_message(a, "s1").await.unwrap()),
            2 => j(s.delete_expired_sent_messages(now - 3600).await.unwrap()),
            _ => j(s.delete_expired_sent_messages(now + 3600).await.unwrap()),
        },
        56 => match r.random_range(0..5) {
            0 => j(s
                .store_pending_inbound(a, "x@s.whatsapp.net", "p1", &bytes(r))
                .await
                .unwrap()),
            1 => j(s
                .get_pending_inbound(a, "x@s.whatsapp.net", "p1")
                .await
                .unwrap()),
            2 => j(s
                .delete_pending_inbound(a, "x@s.whatsapp.net", "p1")
                .await
                .unwrap()),
            3 => {
                let msg = bytes(r);
                let rows = [PendingInboundRow {
                    chat: a,
                    sender: "y@s.whatsapp.net",
                    id: "p2",
                    message: &msg,
                }];
                j(s.store_pending_inbound_batch(&rows).await.unwrap())
            }
            _ => {
                let keys = [PendingInboundKey {
                    chat: a,
                    sender: "y@s.whatsapp.net",
                    id: "p2",
                }];
                j(s.delete_pending_inbound_batch(&keys).await.unwrap())
            }
        },
        57 => {
            let entries: Vec<MsgSecretEntry> = (0..3)
                .map(|_| MsgSecretEntry {
                    chat: Arc::from(a),
                    sender: Arc::from(pick(r, &ADDRS)),
                    msg_id: Arc::from(pick(r, &["m1", "m2"])),
                    secret: [r.random(); 32],
                    expires_at: r.random_range(0..3) * 50,
                    message_ts: r.random_range(0..100),
                })
                .collect();
            j(s.put_msg_secrets(entries).await.unwrap())
        }
        58 => {
            let (sender, id) = (pick(r, &ADDRS), pick(r, &["m1", "m2"]));
            j((
                s.get_msg_secret(a, sender, id).await.unwrap(),
                s.get_msg_secret_with_ts(a, sender, id).await.unwrap(),
            ))
        }
        _ => match r.random_range(0..5) {
            0 => j(s
                .delete_expired_msg_secrets(r.random_range(0..120))
                .await
                .unwrap()),
            1 => j(s.create().await.unwrap()),
            2 => j(s.exists().await.unwrap()),
            3 => j(s.save(device).await.unwrap()),
            // A created device has fresh random keys: only the saved one compares.
            _ => j(s.load().await.unwrap().map(|d| j(d) == j(device))),
        },
    };
    (name, json!(v))
}

#[tokio::test]
async fn web_store_answers_like_the_reference_store() {
    let app = TestApp::spawn().await;
    let (tenant, session) = app.tenant_with_session("web-store").await;
    let ours = WebStore::new(Arc::new(DbDeviceStore::for_session(
        &app.state, tenant, session,
    )));
    let reference = InMemoryBackend::new();
    let now = whatsapp_rust::wacore::time::now_secs();
    let device = Device::new();
    for seed in 0..4u64 {
        let (mut r1, mut r2) = (StdRng::seed_from_u64(seed), StdRng::seed_from_u64(seed));
        for step in 0..600 {
            let (name, want) = op(&reference, &mut r1, now, &device).await;
            let (_, got) = op(&ours, &mut r2, now, &device).await;
            assert_eq!(got, want, "seed {seed}, step {step}: {name}");
        }
    }
    // A restart: a new backend on the same rows gives the same answers for every read.
    let again = WebStore::new(Arc::new(DbDeviceStore::for_session(
        &app.state, tenant, session,
    )));
    for a in ADDRS {
        assert_eq!(
            again.load_identity(a).await.unwrap(),
            reference.load_identity(a).await.unwrap()
        );
        assert_eq!(
            again.get_session(a).await.unwrap(),
            reference.get_session(a).await.unwrap()
        );
    }
    assert_eq!(
        again.get_max_prekey_id().await.unwrap(),
        reference.get_max_prekey_id().await.unwrap()
    );
}
