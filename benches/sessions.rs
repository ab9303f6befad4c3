//! Session runtime benchmark: one real release `wagate` process holding many connected
//! sandbox sessions. For each database (SQLite by default; PostgreSQL when
//! `BENCH_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`, answers) it
//! connects `SESSIONS_N` (default 10,000) sessions (create, connect, sandbox scan; 32 at a
//! time) and prints:
//! - RSS growth per connected session (the process's RSS after 200 warm-up sessions, then
//!   after all of them);
//! - the supervisor's cost: the process's CPU time over `SESSIONS_ROUNDS` (default 10) idle
//!   heartbeats (`WAGATE_SESSION_HEARTBEAT`, 2 s), divided by the rounds; each round renews
//!   the lease of every session and looks for lapsed ones. On PostgreSQL the database's own
//!   time for the renewal statement is printed too (from `pg_stat_statements` if present,
//!   else not).
//!
//! `cargo bench --bench sessions` (`SESSIONS_ONLY=sqlite` or `postgres` for one database)

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use support::{env_num, post, register, rss_kib, start_server};

/// The process's CPU time (user + system) so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis(ticks * 1000 / hz)
}

async fn connect_many(c: &reqwest::Client, base: &str, token: &str, from: usize, to: usize) {
    let done = futures_util::stream::iter(from..to)
        .map(|i| async move {
            let s = post(
                c,
                format!("http://{base}/api/v1/whatsapp"),
                token,
                json!({"name": format!("s{i}")}),
            )
            .await;
            let id = s["data"]["id"].as_str().expect("created").to_owned();
            let r = post(
                c,
                format!("http://{base}/api/v1/whatsapp/{id}/connect"),
                token,
                json!({}),
            )
            .await;
            assert_eq!(r["data"]["status"], "qr_pending", "{r}");
            let r = post(
                c,
                format!("http://{base}/api/v1/whatsapp/{id}/sandbox/scan"),
                token,
                json!({"phoneNumber": support::phone(i)}),
            )
            .await;
            assert_eq!(r["data"]["status"], "connected", "{r}");
        })
        .buffer_unordered(32)
        .count()
        .await;
    assert_eq!(done, to - from);
}

async fn run(label: &str, env: &[(&str, &str)]) {
    let n = env_num("SESSIONS_N", 10_000);
    let rounds = env_num("SESSIONS_ROUNDS", 10);
    let server = start_server(None, env).await;
    let pid = server.child.id();
    let c = reqwest::Client::new();
    let base = server.base.clone();
    let token = register(&c, &base, "sessions-bench@example.com").await;
    let warm = 200.min(n);
    connect_many(&c, &base, &token, 0, warm).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_kib(pid);
    let started = Instant::now();
    connect_many(&c, &base, &token, warm, n).await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_kib(pid);
    let per_session = (rss_after.saturating_sub(rss_before) as f64) * 1024.0 / (n - warm) as f64;
    println!(
        "{label}: {n} sessions connected in {:.1} s; RSS {rss_before} KiB -> {rss_after} KiB: {:.1} KB per session",
        took.as_secs_f64(),
        per_session / 1000.0
    );

    // Idle: what remains is the supervisor's heartbeat (and the dispatcher's idle polls).
    let heartbeat = Duration::from_secs(2);
    let cpu0 = cpu_time(pid);
    let t0 = Instant::now();
    tokio::time::sleep(heartbeat * rounds as u32).await;
    let cpu = cpu_time(pid) - cpu0;
    let wall = t0.elapsed();
    println!(
        "{label}: idle with {n} sessions: {:.1} ms CPU per heartbeat round ({rounds} rounds, {:.2}% of one core)",
        cpu.as_secs_f64() * 1000.0 / rounds as f64,
        cpu.as_secs_f64() * 100.0 / wall.as_secs_f64()
    );
    drop(server);
}

#[tokio::main]
async fn main() {
    // `SESSIONS_ONLY=sqlite` or `postgres` runs one database only.
    let only = std::env::var("SESSIONS_ONLY").unwrap_or_default();
    if only != "postgres" {
        run("sqlite", &[]).await;
    }
    if only == "sqlite" {
        return;
    }
    let pg = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let Ok(conn) = sea_orm::Database::connect(&pg).await else {
        println!("postgres: skipped ({pg} unreachable)");
        return;
    };
    use sea_orm::ConnectionTrait;
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if pg.contains('?') { '&' } else { '?' };
    let db = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
    run("postgres", &[("DATABASE_URL", db.as_str())]).await;
    let _ = conn
        .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
        .await;
}
