//! Idle `web` sessions: memory and CPU of linked WhatsApp Web sessions that wait for traffic.
//! A release `wagate` (built with the test-only `fake-whatsapp` feature, so its client accepts
//! the fake server's certificates) runs on SQLite against the fake WhatsApp Web server of
//! `tests/common/fake_wa`; `WEB_SESSIONS` sessions (default 50) are created, connected and
//! linked by the fake phone (one number each). Prints the process's RSS before and after, the
//! RSS per linked session, the time to link them all, and the CPU the process uses over
//! `WEB_IDLE_SECS` (default 30) of idling with every session connected.
//!
//! `cargo bench --features fake-whatsapp --bench web_idle`

#[path = "../tests/common/fake_wa/mod.rs"]
mod fake_wa;
mod support;

use std::time::{Duration, Instant};

use fake_wa::{FakeWhatsApp, Phone};
use serde_json::{Value, json};
use support::{env_num, post, register, rss_kib, start_server};

/// The process's CPU time so far (user + system), from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // The kernel's clock tick is 100 Hz on Linux builds we run on.
    Duration::from_millis(ticks * 10)
}

async fn get(c: &reqwest::Client, url: String, token: &str) -> Value {
    c.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
}

#[tokio::main]
async fn main() {
    let n = env_num("WEB_SESSIONS", 50);
    let idle = Duration::from_secs(env_num("WEB_IDLE_SECS", 30) as u64);
    let wa = FakeWhatsApp::start().await;
    let url = wa.url();
    let server = start_server(
        None,
        &[
            ("WAGATE_PROVIDERS", "sandbox,web"),
            ("WAGATE_WEB_WS_URL", url.as_str()),
            ("WAGATE_WEB_VERSION", "2.3000.1023456789"),
        ],
    )
    .await;
    let pid = server.child.id();
    let base = server.base.clone();
    let c = reqwest::Client::new();
    let token = register(&c, &base, "idle@bench.test").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_kib(pid);

    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let s = post(
            &c,
            format!("http://{base}/api/v1/whatsapp"),
            &token,
            json!({"name": format!("web {i}"), "provider": "web"}),
        )
        .await;
        let id = s["data"]["id"].as_str().unwrap().to_owned();
        post(
            &c,
            format!("http://{base}/api/v1/whatsapp/{id}/connect"),
            &token,
            json!({}),
        )
        .await;
        ids.push(id);
    }
    // Each session's QR code, scanned by its own phone.
    for (i, id) in ids.iter().enumerate() {
        let code = loop {
            let qr = get(&c, format!("http://{base}/api/v1/whatsapp/{id}/qr"), &token).await;
            if let Some(code) = qr["data"]["code"].as_str() {
                break code.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        wa.scan(&code, &Phone::new(&format!("1415555{i:04}")))
            .expect("scan");
    }
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = get(&c, format!("http://{base}/api/v1/whatsapp/{id}"), &token).await;
            if s["data"]["status"] == "connected" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "session {id} did not connect: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let linked_in = started.elapsed();
    // Let start-up work (pre-key uploads, app-state syncs) settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_linked = rss_kib(pid);
    let cpu_0 = cpu_time(pid);
    tokio::time::sleep(idle).await;
    let cpu = cpu_time(pid).saturating_sub(cpu_0);
    let rss_after = rss_kib(pid);

    let per = (rss_linked.saturating_sub(rss_before)) as f64 / n as f64 / 1024.0;
    println!("web_idle: {n} linked web sessions (fake WhatsApp Web server, SQLite, release)");
    println!("  linked all in {:.1} s", linked_in.as_secs_f64());
    println!(
        "  RSS: {:.1} MiB before, {:.1} MiB linked, {:.1} MiB after {} s idle",
        rss_before as f64 / 1024.0,
        rss_linked as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        idle.as_secs()
    );
    println!("  RSS per linked session: {per:.2} MiB");
    println!(
        "  CPU while idle: {:.2} % of one core ({} ms over {} s)",
        cpu.as_secs_f64() / idle.as_secs_f64() * 100.0,
        cpu.as_millis(),
        idle.as_secs()
    );
    drop(server);
}
