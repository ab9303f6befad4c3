//! A 100 MB CSV made of one line costs the gateway a bounded amount of memory: the row is
//! dropped as it streams by. Alone in its test binary, so the process's peak resident size
//! (`VmHWM` in /proc/self/status) is this import's and the server's only.

mod common;

use common::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Growth of the peak resident size an import of any shape may cause (README: "CSV safety").
const BOUND_MIB: u64 = 64;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_single_line_csv_keeps_memory_bounded() {
    let app = TestApp::spawn().await;
    let token = app.token("memory@csv.test").await;
    // Warm up the import path so one-time allocations are not counted.
    let warm = app
        .post_csv(&token, "phone,name\n+14155550900,Warm\n")
        .await;
    assert_eq!(warm.status().as_u16(), 200);
    let before = status_kib("VmHWM:");

    let header = b"phone,name\n+14155550901,";
    let tail = b"\n+14155550902,After\n";
    let total: usize = 100_000_000;
    let filler = total - header.len() - tail.len();
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/contacts/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/csv\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(header).await.unwrap();
    let chunk = vec![b'a'; 1024 * 1024];
    let mut left = filler;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n]).await.unwrap();
        left -= n;
    }
    s.write_all(tail).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let body: serde_json::Value =
        serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.400}");
    assert_eq!(body["data"]["imported"], 1, "{body}");
    assert_eq!(body["data"]["errors"][0]["line"], 2, "{body}");

    let after = status_kib("VmHWM:");
    let grew_mib = after.saturating_sub(before) / 1024;
    println!(
        "peak RSS {} MiB before, {} MiB after a 100 MB one-line import (+{grew_mib} MiB; bound {BOUND_MIB} MiB); RSS now {} MiB",
        before / 1024,
        after / 1024,
        status_kib("VmRSS:") / 1024
    );
    assert!(
        grew_mib < BOUND_MIB,
        "peak grew by {grew_mib} MiB (bound {BOUND_MIB} MiB)"
    );
}
