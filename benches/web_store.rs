//! Device store throughput of the `web` provider's storage backend (`WebStore` on the
//! encrypted database store), on SQLite and, when `BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) answers, PostgreSQL. Prints:
//! - batched writes: `put_sessions_batch` of `WEB_STORE_BATCH` (default 50) Signal sessions
//!   of 1.5 KB each, `WEB_STORE_BATCHES` (default 200) times: keys per second;
//! - single writes (`put_session`) and reads (`get_session`): operations per second.
//!
//! Every write is committed (SQLite: WAL with `synchronous=FULL`) and sealed with the
//! gateway's cipher, as in production.
//!
//! `cargo bench --bench web_store`

mod support;

use std::{sync::Arc, time::Instant};

use support::env_num;
use wagate::{
    clock::{Clock, SystemClock},
    config::Config,
    domain::ids::TenantId,
    provider::web::store::WebStore,
    repo::{self, sessions::NewSession},
    secrets::{Cipher, EncryptionKey},
    service::device_store::DbDeviceStore,
};
use whatsapp_rust::{bytes::Bytes, wacore::store::traits::SignalStore};

async fn store(url: &str) -> WebStore {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::with_data_dir(dir.path());
    if !url.is_empty() {
        cfg.database_url = url.to_owned().into();
    }
    let db = wagate::db::connect(&cfg).await.unwrap();
    wagate::db::migrate(&db).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let tenant = TenantId::new();
    repo::tenants::insert(&db, tenant, "bench", clock.now())
        .await
        .unwrap();
    let session = repo::sessions::insert(
        &db,
        tenant,
        NewSession {
            name: "web",
            provider: "sandbox",
            status: "disconnected",
            settings: None,
        },
        clock.now(),
    )
    .await
    .unwrap()
    .id;
    let key = EncryptionKey::parse(&"ab".repeat(32)).unwrap();
    // The temp dir must outlive the SQLite file's use: leak it for the bench's life.
    std::mem::forget(dir);
    WebStore::new(Arc::new(DbDeviceStore::new(
        db,
        Arc::new(Cipher::new(&key)),
        clock,
        tenant,
        session,
    )))
}

async fn run(label: &str, url: &str) {
    let s = store(url).await;
    let (batch, batches) = (
        env_num("WEB_STORE_BATCH", 50),
        env_num("WEB_STORE_BATCHES", 200),
    );
    let record = Bytes::from(vec![7u8; 1536]);
    let addr = |i: usize| format!("{}:1@s.whatsapp.net", 4915100000000u64 + i as u64);
    let t = Instant::now();
    for b in 0..batches {
        let rows: Vec<(Arc<str>, Bytes)> = (0..batch)
            .map(|i| (Arc::from(addr((b * batch + i) % 5000)), record.clone()))
            .collect();
        s.put_sessions_batch(&rows).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label}: batched writes: {:.0} keys/s ({batches} batches of {batch}, {:.2} ms per batch)",
        (batch * batches) as f64 / secs,
        secs * 1000.0 / batches as f64
    );
    let n = env_num("WEB_STORE_SINGLES", 1000);
    let t = Instant::now();
    for i in 0..n {
        s.put_session(&addr(i), &record).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{label}: single writes: {:.0} writes/s", n as f64 / secs);
    let t = Instant::now();
    for i in 0..n {
        assert!(s.get_session(&addr(i)).await.unwrap().is_some());
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{label}: reads: {:.0} reads/s", n as f64 / secs);
}

#[tokio::main]
async fn main() {
    run("SQLite", "").await;
    let base = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let Ok(conn) = sea_orm::Database::connect(&base).await else {
        println!("PostgreSQL: not reachable at {base}; skipped");
        return;
    };
    use sea_orm::ConnectionTrait;
    let schema = format!("bench_ws_{}", uuid::Uuid::new_v4().simple());
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    run(
        "PostgreSQL",
        &format!("{base}{sep}options=-c%20search_path%3D{schema}"),
    )
    .await;
    conn.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
