//! Contacts benchmark, against the real release `wagate` binary with its default settings
//! (SQLite; PostgreSQL too when `CONTACTS_PG=1`, at `BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). It prints:
//! - the time to import a generated `CONTACTS_IMPORT` (default 100,000) row CSV through
//!   `POST /api/contacts/import`, and to download it again from `GET /api/contacts/export`;
//! - for comparison, `sqlite3 .import` of the same file into an equivalent table (the CSV's
//!   columns, a unique phone index and an FTS5 trigram index kept by a trigger, WAL with
//!   `synchronous=FULL` like the gateway), and into a bare table;
//! - list and search latency (p50/p99 over `CONTACTS_SAMPLES`, default 200, sequential
//!   requests each) at 10k, 100k and 1M contacts in one tenant (`CONTACTS_MAX`, default
//!   1,000,000, stops earlier).
//!
//! `cargo bench --bench contacts`

mod support;

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{env_num, percentile, phone, register, start_server};

const FIRST: [&str; 20] = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Mateo", "Isabella", "Lucas",
    "Mia", "Levi", "Amelia", "Ezra", "Harper", "Asher", "Evelyn", "James", "Aria", "Leo",
];
const LAST: [&str; 20] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
];

/// Rows `from..to` of the generated CSV (with a header row).
fn csv(from: usize, to: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity((to - from) * 80 + 64);
    out.extend_from_slice(b"phone,name,email,tags,optIn\n");
    for i in from..to {
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len()) % LAST.len()];
        let tag = ["lead", "customer", "vip"][i % 3];
        let _ = writeln!(
            out,
            "{},{first} {last} {i},{}.{}{i}@example.com,{tag},{}",
            phone(i),
            first.to_lowercase(),
            last.to_lowercase(),
            i % 2 == 0
        );
    }
    out
}

async fn import(client: &reqwest::Client, base: &str, token: &str, body: Vec<u8>) -> (Value, f64) {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(body)
            .file_name("contacts.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    let t = Instant::now();
    let v: Value = client
        .post(format!("http://{base}/api/contacts/import"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (v, t.elapsed().as_secs_f64())
}

/// Runs `sqlite3` on a fresh database with `script`, the CSV at `file`; returns seconds.
fn sqlite3_import(
    dir: &std::path::Path,
    name: &str,
    schema: &str,
    file: &std::path::Path,
) -> Option<f64> {
    let db = dir.join(format!("{name}.db"));
    let script = format!(
        "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\n{schema}\n.mode csv\n.import --skip 1 {} contacts\n",
        file.display()
    );
    let t = Instant::now();
    let mut child = Command::new("sqlite3")
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(script.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() || !out.stderr.is_empty() {
        eprintln!("sqlite3 said: {}", String::from_utf8_lossy(&out.stderr));
    }
    Some(secs)
}

const EQUIVALENT: &str = "CREATE TABLE contacts(phone TEXT NOT NULL, name TEXT, email TEXT, tags TEXT, opt_in TEXT);
CREATE UNIQUE INDEX uq_phone ON contacts(phone);
CREATE VIRTUAL TABLE contacts_fts USING fts5(search, content='', tokenize='trigram');
CREATE TRIGGER contacts_ai AFTER INSERT ON contacts BEGIN
  INSERT INTO contacts_fts(rowid, search) VALUES (new.rowid,
    lower(coalesce(new.name,'')) || ' ' || lower(coalesce(new.email,'')) || ' ' || substr(new.phone, 2));
END;";
const BARE: &str =
    "CREATE TABLE contacts(phone TEXT NOT NULL, name TEXT, email TEXT, tags TEXT, opt_in TEXT);";

async fn timed_get(client: &reqwest::Client, url: &str, token: &str, n: usize) -> (f64, f64, u64) {
    let mut lat = Vec::with_capacity(n);
    let mut total = 0;
    for _ in 0..n {
        let t = Instant::now();
        let v: Value = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        total = v["pagination"]["total"]
            .as_u64()
            .or_else(|| v["data"]["total"].as_u64())
            .unwrap_or(0);
    }
    lat.sort_by(f64::total_cmp);
    (percentile(&lat, 50.0), percentile(&lat, 99.0), total)
}

async fn latencies(client: &reqwest::Client, base: &str, token: &str, size: usize, samples: usize) {
    let probe = size / 2 + 7;
    let digits = phone(probe)[5..].to_owned();
    let queries = [
        ("list, page 1", "/api/contacts?limit=20".to_owned()),
        ("list, page 50", "/api/contacts?limit=20&page=50".to_owned()),
        (
            "list by name (vendor API)",
            "/api/whatsapp/contacts?sortBy=name&sortOrder=asc".to_owned(),
        ),
        (
            "search phone digits (7)",
            format!("/api/contacts?search={digits}"),
        ),
        (
            "search email",
            format!(
                "/api/contacts?search=.{}{probe}%40",
                LAST[(probe / 20) % 20].to_lowercase()
            ),
        ),
        (
            "search name + number",
            format!("/api/contacts?search={}%20{probe}", LAST[(probe / 20) % 20]),
        ),
        (
            "search common name",
            "/api/contacts?search=olivia%20smith".to_owned(),
        ),
        ("filter by tag", "/api/contacts?tag=vip".to_owned()),
    ];
    for (label, path) in queries {
        let (p50, p99, total) =
            timed_get(client, &format!("http://{base}{path}"), token, samples).await;
        println!(
            "  {size:>9} contacts | {label:<26} | p50 {p50:>7.2} ms | p99 {p99:>7.2} ms | {total} match"
        );
    }
}

async fn run(label: &str, env: &[(&str, &str)]) {
    let rows = env_num("CONTACTS_IMPORT", 100_000);
    let max = env_num("CONTACTS_MAX", 1_000_000);
    let samples = env_num("CONTACTS_SAMPLES", 200);
    println!("\n== {label} ==");
    let server = start_server(None, env).await;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1800))
        .build()
        .unwrap();
    let token = register(&client, &base, "bench@example.com").await;

    // Import and export of the benchmark file into an empty directory.
    let file = csv(0, rows);
    let bytes = file.len();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contacts.csv");
    std::fs::write(&path, &file).unwrap();
    let (v, secs) = import(&client, &base, &token, file).await;
    println!(
        "import {rows} rows ({:.1} MB): {secs:.2} s ({:.0} rows/s); imported {}, skipped {}",
        bytes as f64 / 1e6,
        rows as f64 / secs,
        v["data"]["imported"],
        v["data"]["skipped"]
    );
    let t = Instant::now();
    let body = client
        .get(format!("http://{base}/api/contacts/export"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let lines = body.iter().filter(|b| **b == b'\n').count();
    println!(
        "export {} rows ({:.1} MB): {:.2} s",
        lines - 1,
        body.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    if label.starts_with("SQLite") {
        match (
            sqlite3_import(dir.path(), "equivalent", EQUIVALENT, &path),
            sqlite3_import(dir.path(), "bare", BARE, &path),
        ) {
            (Some(eq), Some(bare)) => println!(
                "sqlite3 .import of the same file: {eq:.2} s into an equivalent table (unique phone + trigram FTS), {bare:.2} s into a bare table; gateway/equivalent = {:.2}x",
                secs / eq
            ),
            _ => println!("sqlite3 not found: no .import comparison"),
        }
    }

    // Latency at growing sizes.
    let mut have = rows;
    for size in [10_000, 100_000, 1_000_000] {
        if size > max {
            break;
        }
        if size < have {
            continue;
        }
        if size > have {
            let t = Instant::now();
            let mut at = have;
            while at < size {
                let to = (at + 200_000).min(size);
                let (v, _) = import(&client, &base, &token, csv(at, to)).await;
                assert_eq!(v["data"]["skipped"], 0, "{v}");
                at = to;
            }
            println!(
                "(grew to {size} contacts in {:.1} s)",
                t.elapsed().as_secs_f64()
            );
            have = size;
        }
        latencies(&client, &base, &token, size, samples).await;
    }
    drop(server);
}

#[tokio::main]
async fn main() {
    // The 10k point first, on its own server, when the main import is larger.
    let rows = env_num("CONTACTS_IMPORT", 100_000);
    if rows > 10_000 {
        println!("\n== SQLite at 10k ==");
        let server = start_server(None, &[]).await;
        let client = reqwest::Client::new();
        let token = register(&client, &server.base, "small@example.com").await;
        let (v, secs) = import(&client, &server.base, &token, csv(0, 10_000)).await;
        println!(
            "import 10000 rows: {secs:.2} s; imported {}",
            v["data"]["imported"]
        );
        latencies(
            &client,
            &server.base,
            &token,
            10_000,
            env_num("CONTACTS_SAMPLES", 200),
        )
        .await;
    }
    run("SQLite (default)", &[]).await;
    if std::env::var("CONTACTS_PG").is_ok_and(|v| v == "1") {
        let url = std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("bench_{}", std::process::id());
        let admin = Command::new("psql")
            .args([url.as_str(), "-qc", &format!("CREATE SCHEMA {schema}")])
            .status();
        if admin.is_ok_and(|s| s.success()) {
            let db = format!("{url}?options=-c%20search_path%3D{schema}");
            run("PostgreSQL", &[("DATABASE_URL", db.as_str())]).await;
            let _ = Command::new("psql")
                .args([
                    url.as_str(),
                    "-qc",
                    &format!("DROP SCHEMA {schema} CASCADE"),
                ])
                .status();
        } else {
            println!("PostgreSQL unreachable at {url}: skipped");
        }
    }
}
