//! Shared helpers of the benchmarks: start the release `wagate` binary, percentiles.
#![allow(dead_code)]

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

pub fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Stops the server and hands back its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().expect("data dir")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_server(redis: Option<&str>, env: &[(&str, &str)]) -> Server {
    start_in(tempfile::tempdir().unwrap(), redis, env).await
}

/// Starts the release binary on `dir` (a restart passes the previous server's directory).
pub async fn start_in(dir: tempfile::TempDir, redis: Option<&str>, env: &[(&str, &str)]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wagate"));
    cmd.arg("serve")
        .env("WAGATE_ADDR", format!("127.0.0.1:{port}"))
        .env("WAGATE_DATA_DIR", dir.path())
        .env("WAGATE_SANDBOX_CONNECT_DELAY", "0ms")
        .env("WAGATE_AUTH_RATE_LIMIT", "100000")
        // Benchmarks drive one caller far past any sensible per-caller limit.
        .env("WAGATE_RATE_LIMIT_PER_MINUTE", "0")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // `BENCH_SERVER_LOG=<file>` keeps the server's log (appended) for looking into a failure.
    if let Ok(path) = std::env::var("BENCH_SERVER_LOG") {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open BENCH_SERVER_LOG");
        let out = log.try_clone().expect("clone BENCH_SERVER_LOG");
        cmd.stdout(out).stderr(log);
    }
    if let Some(url) = redis {
        cmd.env("REDIS_URL", url);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server {
        child: cmd.spawn().expect("start wagate"),
        base: format!("127.0.0.1:{port}"),
        dir: Some(dir),
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("http://{}/readyz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not become ready");
}

pub async fn post(client: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Registers a tenant owner on the gateway at `base`; returns the access token.
pub async fn register(client: &reqwest::Client, base: &str, email: &str) -> String {
    let reg = post(
        client,
        format!("http://{base}/api/auth/register"),
        "",
        serde_json::json!({"email": email, "password": "correct-horse-battery", "name": "Bench"}),
    )
    .await;
    reg["data"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned()
}

const AREA: [u32; 12] = [212, 213, 310, 312, 415, 617, 646, 702, 713, 718, 801, 917];

/// A valid, unique US number for row `i` (up to 12 × 700 × 10,000 rows).
pub fn phone(i: usize) -> String {
    let rest = i / AREA.len();
    format!(
        "+1{}{}{:04}",
        AREA[i % AREA.len()],
        201 + rest / 10_000,
        rest % 10_000
    )
}
