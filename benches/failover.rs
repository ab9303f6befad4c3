//! Failover benchmark: three real release `wagate` processes share one PostgreSQL database
//! (`BENCH_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`, in a fresh
//! schema) and Redis (`BENCH_REDIS_URL`, default `redis://127.0.0.1:6379/`, if it answers),
//! with the default lease (6 s) and heartbeat (2 s). One sandbox session is connected; then,
//! `FAILOVER_KILLS` times (default 20), its owner is killed with SIGKILL and the time until
//! the session is `connected` on a survivor is measured (polled every 20 ms), after which the
//! killed instance is started again under its id. Prints p50, p99 and max.
//!
//! `cargo bench --bench failover`

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, env_num, percentile, post, start_in};

async fn session(c: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    c.get(format!("http://{base}/api/v1/whatsapp/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"]
        .clone()
}

async fn start(name: &str, db: &str, redis: Option<&str>) -> Server {
    start_in(
        tempfile::tempdir().unwrap(),
        redis,
        &[
            ("DATABASE_URL", db),
            ("WAGATE_INSTANCE_ID", name),
            (
                "WAGATE_JWT_SECRET",
                "failover-bench-secret-of-at-least-32-bytes",
            ),
            // One key for all instances: each has its own data directory.
            (
                "WAGATE_ENCRYPTION_KEY",
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            ),
        ],
    )
    .await
}

#[tokio::main]
async fn main() {
    let pg = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let Ok(conn) = sea_orm::Database::connect(&pg).await else {
        println!("failover: skipped ({pg} unreachable)");
        return;
    };
    use sea_orm::ConnectionTrait;
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if pg.contains('?') { '&' } else { '?' };
    let db = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let redis = match redis::Client::open(redis_url.as_str()) {
        Ok(c) if c.get_multiplexed_async_connection().await.is_ok() => Some(redis_url),
        _ => None,
    };
    let names = ["n1", "n2", "n3"];
    let mut servers = Vec::new();
    for n in names {
        servers.push(Some(start(n, &db, redis.as_deref()).await));
    }
    let c = reqwest::Client::new();
    let base = servers[0].as_ref().unwrap().base.clone();
    let token = support::register(&c, &base, "failover@bench.example").await;
    let s = post(
        &c,
        format!("http://{base}/api/v1/whatsapp"),
        &token,
        json!({"name": "line"}),
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
    post(
        &c,
        format!("http://{base}/api/v1/whatsapp/{id}/sandbox/scan"),
        &token,
        json!({"phoneNumber": "+14155550100"}),
    )
    .await;

    let kills = env_num("FAILOVER_KILLS", 20);
    let mut took = Vec::new();
    for round in 0..kills {
        let any = servers.iter().flatten().next().unwrap().base.clone();
        let owner = session(&c, &any, &token, &id).await["ownerInstance"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let victim = names.iter().position(|n| *n == owner).expect("an owner");
        let mut server = servers[victim].take().unwrap();
        server.child.kill().unwrap();
        let killed = Instant::now();
        let _ = server.child.wait();
        let watcher = servers.iter().flatten().next().unwrap().base.clone();
        loop {
            let s = session(&c, &watcher, &token, &id).await;
            if s["status"] == "connected"
                && s["ownerInstance"] != owner.as_str()
                && s["ownerInstance"].is_string()
            {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "no takeover: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = killed.elapsed().as_secs_f64();
        println!(
            "kill {}: {owner} -> connected elsewhere after {secs:.2} s",
            round + 1
        );
        took.push(secs);
        drop(server);
        servers[victim] = Some(start(names[victim], &db, redis.as_deref()).await);
    }
    took.sort_by(f64::total_cmp);
    println!(
        "failover over {} kills (lease 6 s, heartbeat 2 s): p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        took.len(),
        percentile(&took, 50.0),
        percentile(&took, 99.0),
        took.last().copied().unwrap_or(f64::NAN)
    );
    drop(servers);
    conn.execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
