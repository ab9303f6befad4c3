//! Real `wagate serve` processes, for tests that crash them (SIGKILL) or run several on one
//! database.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

/// A running gateway process.
pub struct Gateway {
    pub child: Child,
    pub base: String,
    pub instance: String,
}

impl Gateway {
    /// Starts `wagate serve` as instance `instance` on `database_url` (and Redis, if given),
    /// with extra environment `env`; waits until `/readyz` answers 200.
    pub async fn start(
        instance: &str,
        data_dir: &std::path::Path,
        database_url: &str,
        redis: Option<&str>,
        env: &[(&str, &str)],
    ) -> Gateway {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wagate"));
        cmd.arg("serve")
            .env("WAGATE_ADDR", format!("127.0.0.1:{port}"))
            .env("WAGATE_DATA_DIR", data_dir)
            .env("DATABASE_URL", database_url)
            .env("WAGATE_INSTANCE_ID", instance)
            .env(
                "WAGATE_JWT_SECRET",
                "failover-test-secret-of-at-least-32-bytes",
            )
            .env("WAGATE_AUTH_RATE_LIMIT", "100000")
            .env("WAGATE_RATE_LIMIT_PER_MINUTE", "0")
            .env("WAGATE_DB_MAX_CONNECTIONS", "5")
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = redis {
            cmd.env("REDIS_URL", url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let gw = Gateway {
            child: cmd.spawn().expect("start wagate"),
            base: format!("http://127.0.0.1:{port}"),
            instance: instance.to_owned(),
        };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if client
                .get(format!("{}/readyz", gw.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return gw;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("wagate instance {instance} did not become ready");
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// `GET path` with a bearer token; the JSON body.
    pub async fn get(&self, client: &reqwest::Client, path: &str, token: &str) -> Value {
        client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST path` with a bearer token and JSON body; status and JSON body.
    pub async fn post(
        &self,
        client: &reqwest::Client,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
