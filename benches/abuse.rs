//! Abuse benchmark: replays the attacks of the security review against the release binary with
//! its default limits (per-caller rate limits off) and prints what each one costs now.
//!
//! `cargo bench --bench abuse` (env: `ABUSE_FLOODS`, default 50 flood requests;
//! `ABUSE_CSV_MB`, default 100 MB per one-line CSV; `ABUSE_CSV_PARALLEL`, default 8).

use std::time::{Duration, Instant};

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{env_num, percentile, post, register, start_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

async fn latencies_ms(client: &reqwest::Client, url: &str, token: &str, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client.get(url).bearer_auth(token).send().await.unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes().await;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    out
}

/// Streams a one-line CSV of `bytes` through `POST /api/contacts/import`; the answer's body.
async fn one_line_csv(base: &str, token: &str, bytes: usize) -> Value {
    let head = b"phone,name\n+14155550901,";
    let tail = b"\n+14155550902,After\n";
    let mut s = tokio::net::TcpStream::connect(base).await.unwrap();
    let req = format!(
        "POST /api/contacts/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/csv\r\nContent-Length: {bytes}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(head).await.unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut left = bytes - head.len() - tail.len();
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n]).await.unwrap();
        left -= n;
    }
    s.write_all(tail).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    serde_json::from_str(answer.split_once("\r\n\r\n").map_or("", |x| x.1)).unwrap_or(Value::Null)
}

async fn raw_status(base: &str, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(base).await.unwrap();
    let _ = s.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    let ct = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-type:"))
        .unwrap_or("no content type");
    format!("{} ({ct})", answer.lines().next().unwrap_or(""))
}

#[tokio::main]
async fn main() {
    let floods = env_num("ABUSE_FLOODS", 50);
    let csv_mb = env_num("ABUSE_CSV_MB", 100);
    let parallel = env_num("ABUSE_CSV_PARALLEL", 8);
    // Defaults everywhere except per-caller rate limits (off, as in every benchmark): the
    // victim's latency samples would otherwise be refused, and the attacks here must be
    // stopped by the other limits on their own.
    let server = start_server(None, &[]).await;
    let pid = server.child.id();
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let attacker = register(&client, &base, "attacker@abuse.bench").await;
    let victim = register(&client, &base, "victim@abuse.bench").await;
    let contacts = format!("http://{base}/api/contacts");
    for i in 0..200 {
        post(
            &client,
            contacts.clone(),
            &victim,
            json!({"phone": support::phone(i), "name": format!("Smith {i}")}),
        )
        .await;
    }
    println!("abuse benchmark against the release binary (defaults), pid {pid}");

    // 1. Alias floods: 1,000 aliases of an expensive search per request.
    let quiet = latencies_ms(&client, &contacts, &victim, 200).await;
    let aliases: String = (0..1000)
        .map(|i| {
            format!(
                "a{i}: contacts(filter: {{search: \"smith\"}}, limit: 100) {{ data {{ id }} }} "
            )
        })
        .collect();
    let query = json!({"query": format!("{{ {aliases} }}")}).to_string();
    let flood = {
        let (client, base, token, query) = (
            client.clone(),
            base.clone(),
            attacker.clone(),
            query.clone(),
        );
        tokio::spawn(async move {
            let mut refusals = Vec::new();
            let mut codes = std::collections::BTreeMap::<String, usize>::new();
            for _ in 0..floods {
                let t = Instant::now();
                let r = client
                    .post(format!("http://{base}/graphql"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(query.clone())
                    .send()
                    .await
                    .unwrap();
                let body: Value = r.json().await.unwrap();
                refusals.push(t.elapsed().as_secs_f64() * 1000.0);
                let code = body["errors"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("none")
                    .to_owned();
                *codes.entry(code).or_default() += 1;
            }
            refusals.sort_by(f64::total_cmp);
            (refusals, codes)
        })
    };
    let during = latencies_ms(&client, &contacts, &victim, 200).await;
    let (refusals, codes) = flood.await.unwrap();
    println!(
        "alias flood ({} KB per request, {floods} requests): refused {codes:?}; refusal p50 {:.1} ms, p99 {:.1} ms",
        query.len() / 1024,
        percentile(&refusals, 50.0),
        percentile(&refusals, 99.0)
    );
    println!(
        "  another tenant's GET /api/contacts: p50 {:.2} ms / p99 {:.2} ms quiet, p50 {:.2} ms / p99 {:.2} ms during the flood",
        percentile(&quiet, 50.0),
        percentile(&quiet, 99.0),
        percentile(&during, 50.0),
        percentile(&during, 99.0)
    );

    // 2. 5,000 aliased sends in one request.
    let session = post(
        &client,
        format!("http://{base}/api/v1/whatsapp"),
        &attacker,
        json!({"name": "s"}),
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sends: String = (0..5000)
        .map(|i| format!("s{i}: sendText(sessionId: \"{session}\", to: \"+14155550161\", text: \"x\") {{ id }} "))
        .collect();
    let t = Instant::now();
    let body = post(
        &client,
        format!("http://{base}/graphql"),
        &attacker,
        json!({"query": format!("mutation {{ {sends} }}")}),
    )
    .await;
    let listed: Value = client
        .get(format!("http://{base}/api/messages"))
        .bearer_auth(&attacker)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "5,000 aliased sendText: {} in {:.1} ms; messages queued: {}",
        body["errors"][0]["extensions"]["code"],
        t.elapsed().as_secs_f64() * 1000.0,
        listed["pagination"]["total"]
    );

    // 3. Huge page numbers.
    let r = client
        .get(format!("{contacts}?page=9223372036854775807"))
        .bearer_auth(&victim)
        .send()
        .await
        .unwrap();
    println!("page=i64::MAX: {} {}", r.status(), r.text().await.unwrap());

    // 4. Over-long URL, header, chunked GraphQL body.
    let path = "a".repeat(100 * 1024);
    println!(
        "100 KB path: {}",
        raw_status(
            &base,
            format!("GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()
        )
        .await
    );
    let big = "b".repeat(1 << 20);
    println!(
        "1 MB header: {}",
        raw_status(
            &base,
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes()
        )
        .await
    );
    let mut chunked = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 64 * 1024));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    println!(
        "2.5 MB chunked /graphql body: {}",
        raw_status(&base, &chunked).await
    );

    // 5. One-line CSVs: the server's peak RSS.
    let rss0 = status_kib(pid, "VmRSS:");
    let hwm0 = status_kib(pid, "VmHWM:");
    let t = Instant::now();
    let out = one_line_csv(&base, &victim, csv_mb * 1_000_000).await;
    println!(
        "{csv_mb} MB one-line CSV: imported {}, error {} in {:.1} s; peak RSS {} → {} MiB (RSS before {} MiB, after {} MiB)",
        out["data"]["imported"],
        out["data"]["errors"][0]["error"],
        t.elapsed().as_secs_f64(),
        hwm0 / 1024,
        status_kib(pid, "VmHWM:") / 1024,
        rss0 / 1024,
        status_kib(pid, "VmRSS:") / 1024
    );
    let t = Instant::now();
    let jobs: Vec<_> = (0..parallel)
        .map(|_| {
            let (base, token) = (base.clone(), victim.clone());
            tokio::spawn(async move { one_line_csv(&base, &token, csv_mb * 1_000_000).await })
        })
        .collect();
    for j in jobs {
        j.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "{parallel} concurrent {csv_mb} MB one-line CSVs in {:.1} s: peak RSS {} MiB, RSS 2 s after {} MiB",
        t.elapsed().as_secs_f64(),
        status_kib(pid, "VmHWM:") / 1024,
        status_kib(pid, "VmRSS:") / 1024
    );

    // 6. Subscriptions on one socket, and a socket that never says hello.
    let mut req = format!("ws://{base}/graphql/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req.clone()).await.unwrap();
    ws.send(Message::text(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {attacker}")}}).to_string()))
        .await
        .unwrap();
    let _ack = ws.next().await;
    for i in 0..20_000 {
        let sub = json!({"id": i.to_string(), "type": "subscribe", "payload": {"query": "subscription { sessionStatus { status } }"}});
        ws.send(Message::text(sub.to_string())).await.unwrap();
    }
    let mut refused = 0;
    while let Ok(Some(Ok(Message::Text(t)))) =
        tokio::time::timeout(Duration::from_secs(2), ws.next()).await
    {
        if t.contains("TOO_MANY_SUBSCRIPTIONS") {
            refused += 1;
        }
    }
    println!(
        "20,000 subscribes on one socket: {refused} refused (TOO_MANY_SUBSCRIPTIONS), {} held; server RSS {} MiB",
        20_000 - refused,
        status_kib(pid, "VmRSS:") / 1024
    );
    let (mut silent, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let t = Instant::now();
    let frame = silent.next().await;
    let code = match frame {
        Some(Ok(Message::Close(Some(f)))) => u16::from(f.code).to_string(),
        other => format!("{other:?}"),
    };
    println!(
        "socket without connection_init: closed with {code} after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(server);
}
