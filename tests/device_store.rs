//! The per-session device store on the real database: round trips, versions, batches, tenant
//! scoping, encryption at rest (raw rows hold no plaintext; a moved blob does not open),
//! cascade on session delete, and the start-up key check.

mod common;

use common::TestApp;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use uuid::Uuid;
use wagate::{
    domain::ids::TenantId,
    provider::store::{DeviceStore, StoreError, Write},
    repo,
    secrets::EncryptionKey,
    service::device_store::{DbDeviceStore, WrongEncryptionKey},
    state::Overrides,
};

fn store(app: &TestApp, tenant: TenantId, session: Uuid) -> DbDeviceStore {
    DbDeviceStore::for_session(&app.state, tenant, session)
}

/// Every (session, namespace, key, value) row, read with plain SQL.
async fn raw_rows(db: &DatabaseConnection) -> Vec<(String, String, Vec<u8>)> {
    let stmt = Statement::from_string(
        db.get_database_backend(),
        "SELECT namespace, key, value FROM device_keys ORDER BY namespace, key",
    );
    db.query_all_raw(stmt)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.try_get::<String>("", "namespace").unwrap(),
                r.try_get::<String>("", "key").unwrap(),
                r.try_get::<Vec<u8>>("", "value").unwrap(),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn round_trip_versions_and_clear() {
    let app = TestApp::spawn().await;
    let (tenant, session) = app.tenant_with_session("Acme").await;
    let s = store(&app, tenant, session);

    assert!(s.get("identity", "me").await.unwrap().is_none());
    s.put("identity", "me", b"id-key-1".to_vec()).await.unwrap();
    let v = s.get("identity", "me").await.unwrap().unwrap();
    assert_eq!((v.version, v.value.as_slice()), (1, &b"id-key-1"[..]));

    // Each write adds one to the version.
    s.put("identity", "me", b"id-key-2".to_vec()).await.unwrap();
    s.put("identity", "me", b"id-key-3".to_vec()).await.unwrap();
    let v = s.get("identity", "me").await.unwrap().unwrap();
    assert_eq!((v.version, v.value.as_slice()), (3, &b"id-key-3"[..]));

    // A batch mixes puts and deletes; an entry named twice counts once (last change wins).
    s.put_batch(vec![
        Write::put("pre-key", "1", b"one".to_vec()),
        Write::put("pre-key", "2", b"two".to_vec()),
        Write::put("pre-key", "3", b"three".to_vec()),
        Write::put("identity", "me", b"first".to_vec()),
        Write::put("identity", "me", b"id-key-4".to_vec()),
        Write::delete("pre-key", "3"),
        Write::delete("pre-key", "never-there"),
    ])
    .await
    .unwrap();
    let v = s.get("identity", "me").await.unwrap().unwrap();
    assert_eq!((v.version, v.value.as_slice()), (4, &b"id-key-4"[..]));
    let list = s.list("pre-key").await.unwrap();
    assert_eq!(
        list.iter()
            .map(|(k, v)| (k.as_str(), v.version, v.value.as_slice()))
            .collect::<Vec<_>>(),
        [("1", 1, &b"one"[..]), ("2", 1, &b"two"[..])]
    );
    let many = s.get_many("pre-key", &["2", "3", "1", "9"]).await.unwrap();
    assert_eq!(many.len(), 2);
    assert_eq!(many["1"].value, b"one");
    assert_eq!(many["2"].value, b"two");
    assert!(s.get_many("pre-key", &[]).await.unwrap().is_empty());

    // Deleting one entry, then re-creating it, starts its version again.
    s.delete("pre-key", "1").await.unwrap();
    assert!(s.get("pre-key", "1").await.unwrap().is_none());
    s.put("pre-key", "1", b"again".to_vec()).await.unwrap();
    assert_eq!(s.get("pre-key", "1").await.unwrap().unwrap().version, 1);

    // Lists are in byte order on every backend.
    s.put_batch(
        ["b", "B", "a", "é", "_"]
            .iter()
            .map(|k| Write::put("order", *k, k.as_bytes().to_vec()))
            .collect(),
    )
    .await
    .unwrap();
    let order = s.list("order").await.unwrap();
    assert_eq!(
        order.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["B", "_", "a", "b", "é"]
    );
    s.clear(Some("order")).await.unwrap();

    // Namespaces are independent.
    s.put("session", "1", b"not a pre-key".to_vec())
        .await
        .unwrap();
    assert_eq!(s.list("pre-key").await.unwrap().len(), 2);
    s.clear(Some("pre-key")).await.unwrap();
    assert!(s.list("pre-key").await.unwrap().is_empty());
    assert!(s.get("identity", "me").await.unwrap().is_some());
    assert!(s.get("session", "1").await.unwrap().is_some());
    s.clear(None).await.unwrap();
    assert!(s.get("identity", "me").await.unwrap().is_none());
    assert!(s.list("session").await.unwrap().is_empty());
    assert!(raw_rows(&app.state.db).await.is_empty());

    // Names that cannot be bound to one place are refused before the database.
    assert!(matches!(
        s.put("a/b", "c", vec![1]).await,
        Err(StoreError::InvalidName(_))
    ));
}

#[tokio::test]
async fn a_batch_of_500_keys_is_written_and_rewritten_at_once() {
    let app = TestApp::spawn().await;
    let (tenant, session) = app.tenant_with_session("Acme").await;
    let s = store(&app, tenant, session);
    let value = |i: usize, round: u8| {
        let mut v = format!("pre-key-{i:04}-").into_bytes();
        v.extend(std::iter::repeat_n(round, 64));
        v
    };
    for round in 1..=2u8 {
        let writes = (0..500)
            .map(|i| Write::put("pre-key", format!("{i:04}"), value(i, round)))
            .collect();
        s.put_batch(writes).await.unwrap();
        let list = s.list("pre-key").await.unwrap();
        assert_eq!(list.len(), 500);
        for (i, (k, v)) in list.iter().enumerate() {
            assert_eq!(k, &format!("{i:04}"));
            assert_eq!(v.version, i64::from(round));
            assert_eq!(v.value, value(i, round));
        }
    }
    let keys: Vec<String> = (0..500).map(|i| format!("{i:04}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(s.get_many("pre-key", &refs).await.unwrap().len(), 500);
    // Deleting all of them is one batch too.
    s.put_batch(keys.iter().map(|k| Write::delete("pre-key", k)).collect())
        .await
        .unwrap();
    assert!(s.list("pre-key").await.unwrap().is_empty());
}

#[tokio::test]
async fn another_tenant_sees_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (tenant_a, session_a) = app.tenant_with_session("A").await;
    let (tenant_b, _) = app.tenant_with_session("B").await;
    let a = store(&app, tenant_a, session_a);
    a.put("identity", "me", b"a-secret".to_vec()).await.unwrap();

    // B's tenant with A's session id.
    let b = store(&app, tenant_b, session_a);
    assert!(b.get("identity", "me").await.unwrap().is_none());
    assert!(b.list("identity").await.unwrap().is_empty());
    assert!(b.get_many("identity", &["me"]).await.unwrap().is_empty());
    b.clear(Some("identity")).await.unwrap();
    b.clear(None).await.unwrap();
    b.delete("identity", "me").await.unwrap();
    // Writes are refused whether the entry exists or not.
    for key in ["me", "new"] {
        let r = b.put("identity", key, b"b-was-here".to_vec()).await;
        assert!(matches!(r, Err(StoreError::SessionGone)), "{key}: {r:?}");
    }
    let r = b
        .put_batch(vec![
            Write::put("identity", "me", b"b-was-here".to_vec()),
            Write::put("identity", "new", b"b-was-here".to_vec()),
        ])
        .await;
    assert!(matches!(r, Err(StoreError::SessionGone)), "{r:?}");

    let v = a.get("identity", "me").await.unwrap().unwrap();
    assert_eq!((v.version, v.value.as_slice()), (1, &b"a-secret"[..]));
    assert_eq!(raw_rows(&app.state.db).await.len(), 1);

    // A session that does not exist at all.
    let ghost = store(&app, tenant_a, Uuid::now_v7());
    assert!(matches!(
        ghost.put("identity", "me", vec![1]).await,
        Err(StoreError::SessionGone)
    ));
}

#[tokio::test]
async fn values_are_encrypted_at_rest_and_bound_to_their_place() {
    let app = TestApp::spawn().await;
    let (tenant, session) = app.tenant_with_session("Acme").await;
    let s = store(&app, tenant, session);
    let secret = b"EAAG-cloud-api-access-token-0123456789";
    s.put_batch(vec![
        Write::put("cloud", "access_token", secret.to_vec()),
        Write::put("cloud", "other", b"another value".to_vec()),
    ])
    .await
    .unwrap();

    let rows = raw_rows(&app.state.db).await;
    assert_eq!(rows.len(), 2);
    for (_, _, value) in &rows {
        assert!(
            !contains(value, secret),
            "plaintext found in the value column"
        );
        assert!(!contains(value, b"another value"));
        assert!(!contains(value, b"cloud-api"));
    }
    let token_blob = rows
        .iter()
        .find(|(_, k, _)| k == "access_token")
        .map(|(_, _, v)| v.clone())
        .unwrap();
    assert_eq!(
        token_blob.len(),
        secret.len() + wagate::secrets::OVERHEAD,
        "one format byte, the nonce and the tag"
    );

    // Move the token's blob onto another key: it must not open there.
    let db = &app.state.db;
    db.execute_unprepared(
        "UPDATE device_keys SET value = (SELECT d.value FROM device_keys d WHERE d.key = 'access_token') WHERE key = 'other'",
    )
    .await
    .unwrap();
    let r = s.get("cloud", "other").await;
    assert!(
        matches!(&r, Err(StoreError::Undecryptable { ns, key }) if ns == "cloud" && key == "other"),
        "{r:?}"
    );
    assert!(s.list("cloud").await.is_err());
    assert!(s.get_many("cloud", &["other"]).await.is_err());
    // The untouched entry still opens.
    assert_eq!(
        s.get("cloud", "access_token").await.unwrap().unwrap().value,
        secret
    );

    // The same blob in another session (same namespace and key) does not open either. The
    // other session's entry is told apart by its version (2; the first session's is 1).
    let (tenant2, session2) = app.tenant_with_session("Other").await;
    let s2 = store(&app, tenant2, session2);
    for _ in 0..2 {
        s2.put("cloud", "access_token", b"placeholder".to_vec())
            .await
            .unwrap();
    }
    db.execute_unprepared(
        "UPDATE device_keys SET value = (SELECT d.value FROM device_keys d WHERE d.key = 'access_token' AND d.version = 1) WHERE key = 'access_token' AND version = 2",
    )
    .await
    .unwrap();
    assert!(matches!(
        s2.get("cloud", "access_token").await,
        Err(StoreError::Undecryptable { .. })
    ));
    assert_eq!(
        s.get("cloud", "access_token").await.unwrap().unwrap().value,
        secret
    );
    // Rewriting the entry replaces the bad blob.
    s2.put("cloud", "access_token", b"fresh".to_vec())
        .await
        .unwrap();
    assert_eq!(
        s2.get("cloud", "access_token")
            .await
            .unwrap()
            .unwrap()
            .value,
        b"fresh"
    );
}

#[tokio::test]
async fn deleting_the_session_deletes_its_keys() {
    let app = TestApp::spawn().await;
    let (tenant, session) = app.tenant_with_session("Acme").await;
    let (tenant2, session2) = app.tenant_with_session("Other").await;
    store(&app, tenant, session)
        .put_batch(
            (0..20)
                .map(|i| Write::put("session", i.to_string(), vec![i as u8; 8]))
                .collect(),
        )
        .await
        .unwrap();
    store(&app, tenant2, session2)
        .put("session", "kept", vec![1])
        .await
        .unwrap();
    assert_eq!(raw_rows(&app.state.db).await.len(), 21);
    assert!(
        repo::sessions::delete(&app.state.db, tenant, session)
            .await
            .unwrap()
    );
    let rows = raw_rows(&app.state.db).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "kept");
    // Writing to the deleted session is refused, not stored.
    assert!(matches!(
        store(&app, tenant, session)
            .put("session", "x", vec![1])
            .await,
        Err(StoreError::SessionGone)
    ));
}

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::parse(&format!("{byte:02x}").repeat(32)).unwrap()
}

#[tokio::test]
async fn a_different_key_fails_start_up_with_one_clear_line() {
    let app = TestApp::spawn_with(|c| c.encryption_key = Some(key(0xa1))).await;
    let (tenant, session) = app.tenant_with_session("Acme").await;
    store(&app, tenant, session)
        .put("identity", "me", b"sealed with A".to_vec())
        .await
        .unwrap();
    let (mut cfg, dir, clock) = app.stop().await;

    cfg.encryption_key = Some(key(0xb2));
    let background = tokio_util::sync::CancellationToken::new();
    let err = wagate::build_state(cfg.clone(), Overrides::default(), background.clone())
        .await
        .err()
        .expect("start-up with another key must fail");
    background.cancel();
    assert!(
        err.downcast_ref::<WrongEncryptionKey>().is_some(),
        "{err:#}"
    );
    assert_eq!(
        format!("{err:#}"),
        "WAGATE_ENCRYPTION_KEY does not match the key this database's secrets were encrypted with"
    );

    // The right key starts, and the stored value is readable.
    cfg.encryption_key = Some(key(0xa1));
    let app = TestApp::start(cfg, dir, clock).await;
    let v = store(&app, tenant, session)
        .get("identity", "me")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.value, b"sealed with A");
}

#[tokio::test]
async fn the_generated_key_is_kept_and_losing_it_is_detected() {
    let app = TestApp::spawn().await;
    let key_file = app.cfg.data_dir.join(wagate::secrets::KEY_FILE);
    assert!(key_file.exists());
    let (cfg, dir, clock) = app.stop().await;
    // A restart reuses the generated key.
    let app = TestApp::start(cfg, dir, clock).await;
    let (cfg, _dir, _clock) = app.stop().await;
    // Without the key file a new key is generated, and it does not match the database.
    std::fs::remove_file(&key_file).unwrap();
    let background = tokio_util::sync::CancellationToken::new();
    let err = wagate::build_state(cfg, Overrides::default(), background.clone())
        .await
        .err()
        .expect("start-up with a lost key must fail");
    background.cancel();
    assert!(
        err.downcast_ref::<WrongEncryptionKey>().is_some(),
        "{err:#}"
    );
}
