//! A private `redis-server` on a free port, so a test can kill and restart it.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A private Redis on a free port, so it can be killed and restarted.
pub struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start(port: u16) -> Option<OwnRedis> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(OwnRedis {
            port,
            child: Some(child),
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub async fn wait_up(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if client.get_multiplexed_async_connection().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on {} did not start", self.port);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free local port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a private Redis; `None` (after a notice) when there is no `redis-server`, which CI
/// does not accept.
pub async fn start_or_skip(test: &str) -> Option<OwnRedis> {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let Some(redis) = OwnRedis::start(free_port()) else {
        assert!(!ci, "{test}: redis-server is required under CI");
        super::skipped(&format!("{test}: no redis-server binary"));
        return None;
    };
    redis.wait_up().await;
    Some(redis)
}
