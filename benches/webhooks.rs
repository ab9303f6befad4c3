//! Webhook delivery benchmark, against the real release `wagate` binary (SQLite by default;
//! `WEBHOOKS_PG=1` adds PostgreSQL at `BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) and a fast receiver on loopback. It prints:
//! - **throughput**: `WEBHOOK_EVENTS` (default 10,000) `contact.created` events queued at
//!   once (bulk imports of 1,000), and the deliveries per second the receiver saw;
//! - **latency**: `WEBHOOK_PACED` (default 2,000) events created one by one at
//!   `WEBHOOK_RATE` per second (default 200, so the queue is never backlogged), and the time
//!   from each event's `timestamp` to its receipt, p50/p99/max.
//!
//! `cargo bench --bench webhooks`

mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use support::{env_num, percentile, phone, register, start_server};

#[derive(Default)]
struct Seen {
    /// (receipt instant, event-to-receipt milliseconds)
    hits: Mutex<Vec<(Instant, f64)>>,
}

async fn receive(State(seen): State<Arc<Seen>>, body: Bytes) -> &'static str {
    let now = Utc::now();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let at: Option<DateTime<Utc>> = v["timestamp"].as_str().and_then(|t| t.parse().ok());
    let ms = at.map_or(f64::NAN, |at| {
        (now - at).num_microseconds().unwrap_or(0) as f64 / 1000.0
    });
    seen.hits.lock().unwrap().push((Instant::now(), ms));
    "ok"
}

async fn start_receiver() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen)
}

async fn wait_count(seen: &Seen, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if seen.hits.lock().unwrap().len() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

async fn run(label: &str, env: &[(&str, &str)]) {
    let events = env_num("WEBHOOK_EVENTS", 10_000);
    let paced = env_num("WEBHOOK_PACED", 2_000);
    let rate = env_num("WEBHOOK_RATE", 200).max(1);
    let (url, seen) = start_receiver().await;
    let mut env = env.to_vec();
    env.push(("WAGATE_WEBHOOK_ALLOW_PRIVATE", "true"));
    let server = start_server(None, &env).await;
    let base = format!("http://{}", server.base);
    let client = reqwest::Client::new();
    let token = register(&client, &server.base, "bench@webhooks.test").await;
    let r: Value = client
        .post(format!("{base}/api/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": url, "events": ["contact.created"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["success"], true, "{r}");

    // Throughput: everything queued at once.
    let started = Instant::now();
    let mut queued = 0;
    while queued < events {
        let n = (events - queued).min(1000);
        let contacts: Vec<Value> = (queued..queued + n)
            .map(|i| json!({"userNumber": phone(i), "userName": format!("Bench {i}")}))
            .collect();
        let res = client
            .post(format!("{base}/api/whatsapp/contacts/bulk"))
            .bearer_auth(&token)
            .json(&json!({"contacts": contacts}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        queued += n;
    }
    let queued_in = started.elapsed();
    let ok = wait_count(&seen, events, Duration::from_secs(300)).await;
    let hits: Vec<(Instant, f64)> = std::mem::take(&mut *seen.hits.lock().unwrap());
    let last = hits.iter().map(|h| h.0).max().unwrap_or(started);
    let secs = (last - started).as_secs_f64();
    let mut backlog: Vec<f64> = hits.iter().map(|h| h.1).collect();
    backlog.sort_by(f64::total_cmp);
    println!(
        "{label}: {events} events queued in {:.2}s; {} delivered in {secs:.2}s from the first request = {:.0} deliveries/s{}",
        queued_in.as_secs_f64(),
        hits.len(),
        hits.len() as f64 / secs,
        if ok { "" } else { " (TIMED OUT)" }
    );
    println!(
        "{label}:   event-to-receipt while backlogged: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&backlog, 50.0),
        percentile(&backlog, 99.0)
    );

    // Latency: paced single events, queue never backlogged.
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let mut next = Instant::now();
    for i in 0..paced {
        next += gap;
        let c = client.clone();
        let (b, t) = (base.clone(), token.clone());
        let p = phone(events + i);
        tokio::spawn(async move {
            let _ = c
                .post(format!("{b}/api/contacts"))
                .bearer_auth(t)
                .json(&json!({"phone": p}))
                .send()
                .await;
        });
        tokio::time::sleep_until(next.into()).await;
    }
    let ok = wait_count(&seen, paced, Duration::from_secs(60)).await;
    let mut lat: Vec<f64> = seen.hits.lock().unwrap().iter().map(|h| h.1).collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "{label}: {} paced events at {rate}/s: event-to-receipt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
        lat.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN),
        if ok { "" } else { " (TIMED OUT)" }
    );
    drop(server);
}

#[tokio::main]
async fn main() {
    run("sqlite", &[]).await;
    if std::env::var("WEBHOOKS_PG").is_ok_and(|v| v == "1") {
        let url = std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("bench_hooks_{}", std::process::id());
        let admin = sea_orm::Database::connect(&url).await.unwrap();
        use sea_orm::ConnectionTrait;
        admin
            .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let db = format!("{url}?options=-c%20search_path%3D{schema}");
        run("postgres", &[("DATABASE_URL", db.as_str())]).await;
        admin
            .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
    }
}
