//! Webhook delivery: retries on the schedule until the receiver is back (with the attempt
//! log), 410 Gone and long failure disabling, restarts mid-schedule, manual retry and test
//! events, per-endpoint concurrency, and several workers sharing one database.

mod common;

use std::time::Duration;

use common::{
    Auth, TestApp,
    receiver::{Receiver, verify},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn setup(app: &TestApp, email: &str, url: String) -> (String, String, String) {
    let token = app.token(email).await;
    let r = app
        .post("/api/webhooks", Auth::Bearer(&token), json!({"url": url}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let secret = r.body["data"]["secret"].as_str().unwrap().to_owned();
    (token, id, secret)
}

async fn contact(app: &TestApp, token: &str, phone: &str) {
    let r = app
        .post(
            "/api/contacts",
            Auth::Bearer(token),
            json!({"phone": phone}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

async fn deliveries(app: &TestApp, token: &str, hook: &str, query: &str) -> Value {
    let r = app
        .get(
            &format!("/api/webhooks/{hook}/deliveries{query}"),
            Auth::Bearer(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Polls the log until `n` deliveries are `delivered` (max 10 s).
async fn wait_delivered(app: &TestApp, token: &str, hook: &str, n: usize) {
    let mut total = Value::Null;
    for _ in 0..400 {
        total =
            deliveries(app, token, hook, "?status=delivered").await["pagination"]["total"].clone();
        if total == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{total} of {n} delivered");
}

/// Polls the log until the first delivery satisfies `pred` (max 10 s).
async fn wait_delivery(
    app: &TestApp,
    token: &str,
    hook: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let body = deliveries(app, token, hook, "").await;
        if let Some(d) = body["data"].as_array().and_then(|a| a.first())
            && pred(d)
        {
            return d.clone();
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("delivery never matched: {last}");
}

#[tokio::test]
async fn retries_until_the_receiver_is_back_and_logs_each_try() {
    let app = TestApp::spawn().await;
    let mut rx = Receiver::down().await;
    let (token, hook, secret) = setup(&app, "retry@hooks.test", rx.url("/in")).await;
    contact(&app, &token, "+14155550201").await;

    // First try at once: refused.
    let d = wait_delivery(&app, &token, &hook, |d| d["attemptCount"] == 1).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["eventType"], "contact.created");
    let a = &d["attempts"][0];
    assert!(a["httpStatus"].is_null() && a["error"].is_string(), "{d}");
    assert!(a["latencyMs"].is_number() && a["attemptedAt"].is_string());

    // 5 s after the first try ended (schedule: 0s, 5s, 5m, …) the second: an error answer.
    rx.up().await;
    rx.answer(503);
    app.clock.advance(chrono::Duration::seconds(6));
    app.state.webhooks.wake.notify_one();
    let d = wait_delivery(&app, &token, &hook, |d| d["attemptCount"] == 2).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["attempts"][1]["httpStatus"], 503);
    assert_eq!(d["attempts"][1]["responseBody"], "thanks");
    assert_eq!(d["lastHttpStatus"], 503);

    // Not due yet: nothing happens before the 5-minute mark.
    app.clock.advance(chrono::Duration::seconds(60));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits_on("/in").len(), 1);

    rx.answer(200);
    app.clock.advance(chrono::Duration::seconds(241));
    let d = wait_delivery(&app, &token, &hook, |d| d["status"] == "delivered").await;
    assert_eq!(d["attemptCount"], 3);
    assert_eq!(d["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(d["attempts"][2]["httpStatus"], 200);
    assert!(d["deliveredAt"].is_string());
    let hits = rx.wait_for("/in", 2).await;
    assert_eq!(hits[0].id, hits[1].id, "every try has the same webhook-id");
    assert!(verify(&secret, &hits[1]));
    assert_eq!(hits[1].body, d["payload"]);

    let r = app
        .get(
            &format!("/api/webhooks/{hook}/deliveries?status=pending"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["pagination"]["total"], 0);
    let r = app
        .get(
            &format!("/api/webhooks/{hook}/deliveries?status=delivered&limit=5"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["pagination"]["total"], 1);
    assert_eq!(r.body["pagination"]["limit"], 5);
}

#[tokio::test]
async fn a_schedule_that_runs_out_fails_the_delivery_and_redirects_are_not_followed() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.webhooks.retry_schedule = vec![Duration::ZERO, Duration::from_secs(1)];
    })
    .await;
    let rx = Receiver::start().await;
    rx.answer(302);
    let (token, hook, _) = setup(&app, "exhaust@hooks.test", rx.url("/moved")).await;
    contact(&app, &token, "+14155550202").await;
    wait_delivery(&app, &token, &hook, |d| d["attemptCount"] == 1).await;
    app.clock.advance(chrono::Duration::seconds(2));
    let d = wait_delivery(&app, &token, &hook, |d| d["status"] == "failed").await;
    assert_eq!(d["attemptCount"], 2);
    assert!(d["nextAttemptAt"].is_null());
    assert!(d["lastError"].as_str().unwrap().contains("redirect"), "{d}");
    // A manual retry sends it once more.
    rx.answer(200);
    let id = d["id"].as_str().unwrap();
    let r = app
        .post_empty(
            &format!("/api/webhooks/{hook}/deliveries/{id}/retry"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let d = wait_delivery(&app, &token, &hook, |d| d["status"] == "delivered").await;
    assert_eq!(d["attemptCount"], 3);
    assert_eq!(rx.hits_on("/moved").len(), 3);

    // Unknown deliveries and other tenants' are 404.
    let r = app
        .post_empty(
            &format!(
                "/api/webhooks/{hook}/deliveries/{}/retry",
                uuid::Uuid::new_v4()
            ),
            Auth::Bearer(&token),
        )
        .await;
    r.assert_error(404, "NOT_FOUND");
    let other = app.token("thief@hooks.test").await;
    let r = app
        .post_empty(
            &format!("/api/webhooks/{hook}/deliveries/{id}/retry"),
            Auth::Bearer(&other),
        )
        .await;
    r.assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_reports_it() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    rx.answer(410);
    let (token, hook, _) = setup(&app, "gone@hooks.test", rx.url("/gone")).await;
    let r = app
        .post(
            "/api/webhooks",
            Auth::Bearer(&token),
            json!({"url": rx.url("/ops"), "events": ["webhook.disabled"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // /ops answers 410 too (one status for the whole receiver), so give it its own receiver.
    let ops = Receiver::start().await;
    let ops_id = r.body["data"]["id"].as_str().unwrap();
    app.patch(
        &format!("/api/webhooks/{ops_id}"),
        Auth::Bearer(&token),
        json!({"url": ops.url("/ops")}),
    )
    .await;

    contact(&app, &token, "+14155550203").await;
    let d = wait_delivery(&app, &token, &hook, |d| d["status"] == "failed").await;
    assert_eq!(d["attemptCount"], 1, "410 is not retried");
    let r = app
        .get(&format!("/api/webhooks/{hook}"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.body["data"]["enabled"], false, "{}", r.body);
    assert!(
        r.body["data"]["disabledReason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    let hits = ops.wait_for("/ops", 1).await;
    assert_eq!(hits[0].body["type"], "webhook.disabled");
    assert_eq!(hits[0].body["data"]["id"], hook.as_str());
    assert_eq!(hits[0].body["data"]["enabled"], false);

    // Disabled: new events wait for nobody; a test event is refused.
    contact(&app, &token, "+14155550204").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits_on("/gone").len(), 1);
    app.post_empty(&format!("/api/webhooks/{hook}/test"), Auth::Bearer(&token))
        .await
        .assert_error(409, "CONFLICT");

    // Re-enabled, it works again.
    rx.answer(200);
    let r = app
        .patch(
            &format!("/api/webhooks/{hook}"),
            Auth::Bearer(&token),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.body["data"]["enabled"], true);
    assert!(r.body["data"]["disabledReason"].is_null());
    let r = app
        .post_empty(&format!("/api/webhooks/{hook}/test"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["data"]["eventType"], "webhook.test");
    let hits = rx.wait_for("/gone", 2).await;
    assert_eq!(hits[1].body["type"], "webhook.test");
    assert_eq!(hits[1].body["data"]["webhookId"], hook.as_str());
}

#[tokio::test]
async fn an_endpoint_failing_for_days_is_disabled() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.webhooks.disable_after = Duration::from_secs(600);
    })
    .await;
    let rx = Receiver::start().await;
    rx.answer(500);
    let (token, hook, _) = setup(&app, "flaky@hooks.test", rx.url("/flaky")).await;
    contact(&app, &token, "+14155550205").await;
    wait_delivery(&app, &token, &hook, |d| d["attemptCount"] == 1).await;
    let r = app
        .get(&format!("/api/webhooks/{hook}"), Auth::Bearer(&token))
        .await;
    assert!(r.body["data"]["failingSince"].is_string(), "{}", r.body);
    assert_eq!(r.body["data"]["enabled"], true);
    // Still failing ten minutes later: disabled.
    app.clock.advance(chrono::Duration::seconds(600));
    contact(&app, &token, "+14155550206").await;
    let mut disabled = Value::Null;
    for _ in 0..400 {
        let r = app
            .get(&format!("/api/webhooks/{hook}"), Auth::Bearer(&token))
            .await;
        if r.body["data"]["enabled"] == false {
            disabled = r.body["data"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        disabled["disabledReason"]
            .as_str()
            .unwrap_or_default()
            .contains("failed"),
        "{disabled}"
    );
}

#[tokio::test]
async fn a_restart_mid_schedule_loses_nothing() {
    let app = TestApp::spawn().await;
    let mut rx = Receiver::down().await;
    let (token, hook, secret) = setup(&app, "restart@hooks.test", rx.url("/r")).await;
    for i in 0..5 {
        contact(&app, &token, &format!("+1415555030{i}")).await;
    }
    for _ in 0..400 {
        let body = deliveries(&app, &token, &hook, "").await;
        if body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["attemptCount"] == 1)
            && body["pagination"]["total"] == 5
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (cfg, dir, clock) = app.stop().await;
    rx.up().await;
    clock.advance(chrono::Duration::seconds(6));
    let app = TestApp::start(cfg, dir, clock).await;
    let hits = rx.wait_for("/r", 5).await;
    let mut ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "each event once");
    assert!(hits.iter().all(|h| verify(&secret, h)));
    // The receipts are in; the results are written right after.
    wait_delivered(&app, &token, &hook, 5).await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_others() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.webhooks.endpoint_concurrency = 2;
    })
    .await;
    let slow = Receiver::start().await;
    slow.delay(Duration::from_millis(500));
    let fast = Receiver::start().await;
    let token = app.token("slow@hooks.test").await;
    for url in [slow.url("/slow"), fast.url("/fast")] {
        let r = app
            .post("/api/webhooks", Auth::Bearer(&token), json!({"url": url}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let started = std::time::Instant::now();
    for i in 0..20 {
        contact(&app, &token, &format!("+141555504{i:02}")).await;
    }
    fast.wait_for("/fast", 20).await;
    let fast_done = started.elapsed();
    assert!(
        slow.hits_on("/slow").len() < 20,
        "the fast endpoint finished first ({fast_done:?})"
    );
    slow.wait_for("/slow", 6).await;
    assert!(
        slow.max_in_flight() <= 2,
        "at most 2 at once: {}",
        slow.max_in_flight()
    );
}

#[tokio::test]
async fn two_gateways_on_one_database_deliver_each_event_once() {
    // Several gateways share a database only on PostgreSQL (SQLite is a single writer).
    if !common::on_postgres() {
        common::skipped(
            "two_gateways_on_one_database_deliver_each_event_once: PostgreSQL only (set TEST_DATABASE_URL)",
        );
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::start(
        a.cfg.clone(),
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        a.clock.clone(),
    )
    .await;
    let rx = Receiver::start().await;
    rx.delay(Duration::from_millis(2));
    let (token, hook, _) = setup(&a, "pair@hooks.test", rx.url("/pair")).await;
    let n = 300;
    let phones: Vec<String> = (0..n).map(|i| format!("+1415556{i:04}")).collect();
    let tasks = phones.iter().enumerate().map(|(i, phone)| {
        let app = if i % 2 == 0 { &a } else { &b };
        contact(app, &token, phone)
    });
    futures_util::future::join_all(tasks).await;
    let hits = rx.wait_for("/pair", n).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits_after = rx.hits_on("/pair");
    let mut ids: Vec<String> = hits_after.iter().map(|h| h.id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n);
    assert_eq!(
        hits_after.len(),
        n,
        "no event delivered twice ({} before settling)",
        hits.len()
    );
    wait_delivered(&a, &token, &hook, n).await;
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_for_a_day() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    let (token, hook, old) = setup(&app, "rotate@hooks.test", rx.url("/rot")).await;
    let r = app
        .post_empty(
            &format!("/api/webhooks/{hook}/rotate-secret"),
            Auth::Bearer(&token),
        )
        .await;
    let new = r.body["data"]["secret"].as_str().unwrap().to_owned();
    let r = app
        .post_empty(&format!("/api/webhooks/{hook}/test"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let hits = rx.wait_for("/rot", 1).await;
    assert_eq!(
        hits[0].signature.split(' ').count(),
        2,
        "{}",
        hits[0].signature
    );
    assert!(verify(&old, &hits[0]) && verify(&new, &hits[0]));

    // A day later only the new secret signs.
    app.clock.advance(chrono::Duration::hours(25));
    let r = app
        .post(
            "/api/auth/login",
            Auth::None,
            json!({"email": "rotate@hooks.test", "password": "correct-horse-battery"}),
        )
        .await;
    let token = r.body["data"]["accessToken"].as_str().unwrap().to_owned();
    app.post_empty(&format!("/api/webhooks/{hook}/test"), Auth::Bearer(&token))
        .await;
    let hits = rx.wait_for("/rot", 2).await;
    assert_eq!(hits[1].signature.split(' ').count(), 1);
    assert!(verify(&new, &hits[1]) && !verify(&old, &hits[1]));
}

#[tokio::test]
async fn a_delivery_in_flight_cannot_be_retried_twice_at_once() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    rx.delay(Duration::from_millis(800));
    let (token, hook, _) = setup(&app, "inflight@hooks.test", rx.url("/busy")).await;
    contact(&app, &token, "+14155550207").await;
    for _ in 0..200 {
        if rx.in_flight() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rx.in_flight(), 1);
    let d = &deliveries(&app, &token, &hook, "").await["data"][0];
    let r = app
        .post_empty(
            &format!(
                "/api/webhooks/{hook}/deliveries/{}/retry",
                d["id"].as_str().unwrap()
            ),
            Auth::Bearer(&token),
        )
        .await;
    r.assert_error(409, "CONFLICT");
    wait_delivery(&app, &token, &hook, |d| d["status"] == "delivered").await;
    assert_eq!(rx.hits_on("/busy").len(), 1);
}
