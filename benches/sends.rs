//! Send benchmark. For each database (SQLite by default; PostgreSQL when `BENCH_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`, answers) it runs the real release
//! `wagate` binary with its default settings (dispatcher and sandbox receipts on) and prints:
//! - accepted `send-text` requests per second, with p50/p99 latency, from `SENDS_CLIENTS`
//!   (default 64) concurrent clients sending `SENDS_TOTAL` (default 30,000) messages. Every
//!   accepted message is committed before its 200 (SQLite: WAL with `synchronous=FULL`);
//! - how long the dispatcher (sending through the sandbox meanwhile) takes to catch up;
//! - the drain: `SENDS_DRAIN` (default 10,000) messages queued while the dispatcher is off,
//!   then the time for a restarted gateway to get all of them `sent` through the sandbox.
//!
//! Messages go to 100 recipients in turn (each chat is sent in order, chats in parallel).
//!
//! `cargo bench --bench sends`

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, env_num, percentile, post, start_in, start_server};

/// Recipients cycle through 100 numbers (+91 98765 432xx), like a small campaign.
fn recipient(i: usize) -> String {
    format!("9198765432{:02}", i % 100)
}

async fn setup(base: &str) -> (String, String) {
    let client = reqwest::Client::new();
    let token = support::register(&client, base, "bench@example.com").await;
    let s = post(
        &client,
        format!("http://{base}/api/v1/whatsapp"),
        &token,
        json!({"name": "bench"}),
    )
    .await;
    let id = s["data"]["id"].as_str().unwrap().to_owned();
    post(
        &client,
        format!("http://{base}/api/v1/whatsapp/{id}/connect"),
        &token,
        Value::Null,
    )
    .await;
    let r = post(
        &client,
        format!("http://{base}/api/v1/whatsapp/{id}/sandbox/scan"),
        &token,
        json!({"phoneNumber": "+14155550100"}),
    )
    .await;
    assert_eq!(r["data"]["status"], "connected", "{r}");
    (token, id)
}

/// `total` sends from `clients` concurrent clients; returns (requests/s, latencies in ms).
async fn blast(
    base: &str,
    token: &str,
    session: &str,
    clients: usize,
    total: usize,
) -> (f64, Vec<f64>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, next) = (client.clone(), next.clone());
        let url = format!("http://{base}/api/messages/send-text");
        let (token, session) = (token.to_owned(), session.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return lat;
                }
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"sessionId": session, "to": recipient(i), "text": format!("bench {i}")}))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(res.status(), 200, "{:?}", res.text().await);
                let _ = res.bytes().await;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (rate, all)
}

/// Waits for the session to be back online after a restart.
async fn wait_connected(base: &str, token: &str, session: &str) {
    for _ in 0..500 {
        let v: Value = reqwest::Client::new()
            .get(format!("http://{base}/api/v1/whatsapp/{session}/status"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["data"]["connected"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("session did not reconnect");
}

async fn count(base: &str, token: &str, status: &str) -> u64 {
    let v: Value = reqwest::Client::new()
        .get(format!(
            "http://{base}/api/messages?status={status}&limit=1"
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["pagination"]["total"].as_u64().unwrap_or(0)
}

async fn run(label: &str, db_env: &[(&str, &str)]) {
    let clients = env_num("SENDS_CLIENTS", 64);
    let total = env_num("SENDS_TOTAL", 30_000);
    let drain = env_num("SENDS_DRAIN", 10_000);

    let server = start_server(None, db_env).await;
    let (token, session) = setup(&server.base).await;
    // Warm-up (connections, caches).
    blast(&server.base, &token, &session, clients, 2_000).await;
    let (rate, lat) = blast(&server.base, &token, &session, clients, total).await;
    println!(
        "{label}: accepted send-text: {rate:.0} req/s with {clients} clients ({total} requests); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    // Let the dispatcher catch up before stopping, so no claim is cut off by the stop.
    let started = Instant::now();
    while count(&server.base, &token, "queued").await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{label}: the dispatcher caught up {:.2} s after the last request",
        started.elapsed().as_secs_f64()
    );
    let dir = server.stop();

    // Queue `drain` messages with no dispatcher, then time a dispatching gateway draining them.
    let mut env: Vec<(&str, &str)> = db_env.to_vec();
    env.push(("WAGATE_DISPATCH_ENABLED", "false"));
    let server: Server = start_in(dir, None, &env).await;
    wait_connected(&server.base, &token, &session).await;
    let before = count(&server.base, &token, "queued").await;
    blast(&server.base, &token, &session, clients, drain).await;
    let queued = count(&server.base, &token, "queued").await - before;
    let dir = server.stop();
    let started = Instant::now();
    let server = start_in(dir, None, db_env).await;
    loop {
        if count(&server.base, &token, "queued").await == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            panic!("drain did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let failed = count(&server.base, &token, "failed").await;
    println!(
        "{label}: drain: {} queued messages all sent in {secs:.2} s including start-up and reconnect ({:.0} msg/s); failed: {failed}",
        queued + before,
        (queued + before) as f64 / secs
    );
}

#[tokio::main]
async fn main() {
    run("sqlite", &[]).await;
    let pg = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let Ok(conn) = sea_orm::Database::connect(&pg).await else {
        println!("postgres: skipped ({pg} unreachable)");
        return;
    };
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if pg.contains('?') { '&' } else { '?' };
    let url = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
    run("postgres", &[("DATABASE_URL", url.as_str())]).await;
    conn.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
