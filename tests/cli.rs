//! The `wagate` binary: configuration errors, generated contracts, and serving with defaults.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn wagate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wagate"));
    // Start from a clean slate: no inherited config, no .env from the working directory.
    for key in [
        "WAGATE_ADDR",
        "WAGATE_DATA_DIR",
        "DATABASE_URL",
        "REDIS_URL",
        "WAGATE_JWT_SECRET",
        "WAGATE_ACCESS_TOKEN_TTL",
        "WAGATE_REFRESH_TOKEN_TTL",
        "WAGATE_BODY_LIMIT",
        "WAGATE_AUTH_RATE_LIMIT",
        "WAGATE_DB_MAX_CONNECTIONS",
        "WAGATE_LOG_FORMAT",
    ] {
        c.env_remove(key);
    }
    c
}

#[test]
fn invalid_config_fails_with_one_line() {
    let cases = [
        ("WAGATE_ADDR", "not-an-address"),
        ("DATABASE_URL", "mysql://nope"),
        ("REDIS_URL", "http://nope"),
        ("WAGATE_JWT_SECRET", "short"),
        ("WAGATE_ENCRYPTION_KEY", "not-a-key"),
        ("WAGATE_ACCESS_TOKEN_TTL", "forever"),
    ];
    for (key, value) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = wagate()
            .current_dir(dir.path())
            .env(key, value)
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{key}: {stderr}");
        assert!(
            stderr.starts_with(&format!("wagate: invalid configuration: {key}: ")),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn prints_the_committed_contracts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = wagate().arg("openapi").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(root.join("openapi/openapi.json")).unwrap()
    );
    let out = wagate().arg("schema").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(root.join("schema/schema.graphql")).unwrap()
    );
}

#[test]
fn migrate_runs_twice() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = wagate()
            .current_dir(dir.path())
            .env("WAGATE_DATA_DIR", dir.path().join("data"))
            .arg("migrate")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.path().join("data/wagate.db").exists());
}

#[test]
fn serves_with_defaults_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Find a free port, then let the binary use it with otherwise default configuration.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = wagate()
        .current_dir(dir.path())
        .env("WAGATE_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let ok = loop {
        if let Ok(body) = ureq_get(&url) {
            break body;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ok.contains("\"status\":\"ok\""), "{ok}");
    // Default data dir is ./data with the SQLite file and a private JWT secret.
    assert!(dir.path().join("data/wagate.db").exists());
    assert!(dir.path().join("data/jwt_secret").exists());

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let logs: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let logs = logs.join("\n");
    assert!(logs.contains("wagate listening"), "{logs}");
    assert!(logs.contains("wagate stopped"), "{logs}");
    let secret = std::fs::read_to_string(dir.path().join("data/jwt_secret")).unwrap();
    assert!(
        !logs.contains(secret.trim()),
        "the JWT secret must never be logged"
    );
}

/// A minimal blocking GET (the tests' reqwest is async).
fn ureq_get(url: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if out.starts_with("HTTP/1.1 200") {
        Ok(out)
    } else {
        Err(std::io::Error::other(out))
    }
}
