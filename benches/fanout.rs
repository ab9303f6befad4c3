//! Fan-out benchmark: N WebSocket subscribers of one tenant, one session status change per
//! REST call; prints the time from the REST call to the last (and each) subscriber's receipt,
//! plus the server's idle RSS and RSS per 1,000 subscribers. Runs the real `wagate` binary
//! (release build) in-process-bus mode, then with Redis when `BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`) answers.
//!
//! `cargo bench --bench fanout` (env: `FANOUT_SUBSCRIBERS`, default 1000; `FANOUT_TRIALS`, default 200).

use std::time::{Duration, Instant};

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::{env_num, percentile, post, rss_kib, start_server};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, protocol::WebSocketConfig,
};

/// The `"status":"…"` value of a frame, without parsing the whole JSON.
fn status_of(frame: &str) -> Option<&str> {
    let start = frame.find("\"status\":\"")? + 10;
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// Opens a subscriber; every received status is sent to `tx` with its arrival time.
async fn subscriber(
    base: &str,
    token: &str,
    session: &str,
    idx: usize,
    tx: mpsc::UnboundedSender<(usize, Instant, String)>,
) {
    let mut req = format!("ws://{base}/graphql/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    // Small buffers: tungstenite's 128 KiB defaults make the client zero 128 KiB per read,
    // stealing the CPU this benchmark is measuring the server with.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .expect("ws connect");
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    loop {
        if let Some(Ok(Message::Text(t))) = ws.next().await
            && t.contains("connection_ack")
        {
            break;
        }
    }
    let sub = json!({"id": "s", "type": "subscribe", "payload": {
        "query": "subscription($id: ID) { sessionStatus(sessionId: $id) { status } }",
        "variables": {"id": session}}});
    ws.send(Message::text(sub.to_string())).await.unwrap();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg {
                let at = Instant::now();
                // Cheap extraction: the bench client shares the CPU with the server.
                if let Some(status) = status_of(&t)
                    && tx.send((idx, at, status.to_owned())).is_err()
                {
                    return;
                }
            }
        }
    });
}

/// Waits until every subscriber has reported `status`; returns each one's arrival time.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<(usize, Instant, String)>,
    n: usize,
    status: &str,
) -> Vec<Instant> {
    let mut got: Vec<Option<Instant>> = vec![None; n];
    let mut left = n;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while left > 0 {
        let (idx, at, s) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("subscribers did not all receive the event")
            .unwrap();
        if s == status && got[idx].is_none() {
            got[idx] = Some(at);
            left -= 1;
        }
    }
    got.into_iter().flatten().collect()
}

async fn run(mode: &str, redis: Option<&str>, n: usize, trials: usize) {
    let server = start_server(redis, &[]).await;
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid);
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let reg = post(
        &http,
        format!("http://{base}/api/auth/register"),
        "",
        json!({"email": "bench@example.com", "password": "bench-password", "name": "Bench"}),
    )
    .await;
    let token = reg["data"]["accessToken"].as_str().unwrap().to_owned();
    let s = post(
        &http,
        format!("http://{base}/api/v1/whatsapp"),
        &token,
        json!({"name": "bench"}),
    )
    .await;
    let id = s["data"]["id"].as_str().unwrap().to_owned();
    post(
        &http,
        format!("http://{base}/api/v1/whatsapp/{id}/connect"),
        &token,
        json!({}),
    )
    .await;
    post(
        &http,
        format!("http://{base}/api/v1/whatsapp/{id}/sandbox/scan"),
        &token,
        json!({}),
    )
    .await;

    let (tx, mut rx) = mpsc::unbounded_channel();
    let opened = Instant::now();
    for i in 0..n {
        subscriber(&base, &token, &id, i, tx.clone()).await;
    }
    let open_secs = opened.elapsed().as_secs_f64();
    // Warm-up round: proves every subscription is live before measuring.
    let action = |what: &'static str| {
        let (http, url, token) = (
            http.clone(),
            format!("http://{base}/api/v1/whatsapp/{id}/{what}"),
            token.clone(),
        );
        async move { post(&http, url, &token, json!({})).await }
    };
    action("disconnect").await;
    collect(&mut rx, n, "DISCONNECTED").await;
    action("connect").await;
    collect(&mut rx, n, "CONNECTED").await;
    let loaded = rss_kib(pid);

    let mut last = Vec::with_capacity(trials);
    let mut each = Vec::with_capacity(trials * n);
    for _ in 0..trials {
        let t0 = Instant::now();
        action("disconnect").await;
        let arrivals = collect(&mut rx, n, "DISCONNECTED").await;
        let ms: Vec<f64> = arrivals
            .iter()
            .map(|a| a.duration_since(t0).as_secs_f64() * 1000.0)
            .collect();
        last.push(ms.iter().cloned().fold(0.0, f64::max));
        each.extend(ms);
        action("connect").await;
        collect(&mut rx, n, "CONNECTED").await;
    }
    last.sort_by(f64::total_cmp);
    each.sort_by(f64::total_cmp);
    println!("== fan-out, {mode} bus: {n} subscribers, {trials} status changes ==");
    println!("  subscribers opened in {open_secs:.2} s");
    println!(
        "  REST call -> last subscriber: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&last, 50.0),
        percentile(&last, 99.0),
        last.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  REST call -> each subscriber: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&each, 50.0),
        percentile(&each, 99.0)
    );
    println!(
        "  server RSS: idle {:.1} MiB, with subscribers {:.1} MiB ({:.1} MiB per 1,000 subscribers)",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0,
        (loaded.saturating_sub(idle)) as f64 / 1024.0 * 1000.0 / n as f64
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n = env_num("FANOUT_SUBSCRIBERS", 1000);
    let trials = env_num("FANOUT_TRIALS", 200);
    run("in-process", None, n, trials).await;
    let redis =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let reachable = match redis::Client::open(redis.as_str()) {
        Ok(c) => c.get_multiplexed_async_connection().await.is_ok(),
        Err(_) => false,
    };
    if reachable {
        run("Redis", Some(&redis), n, trials).await;
    } else {
        println!("== fan-out, Redis bus: skipped ({redis} unreachable) ==");
    }
}
