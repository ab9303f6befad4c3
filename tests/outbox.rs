//! The durable outbox: restart survival, crash recovery, retries with backoff, and
//! concurrent dispatchers.

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{Auth, TestApp};
use serde_json::Value;
use uuid::Uuid;
use wagate::{
    clock::{Clock, ManualClock},
    provider::{
        Capabilities, Connection, Control, ControlReply, OutboundMessage, Provider, ProviderError,
        ProviderKind, Providers, SendError, SentMessage, SessionContext, sandbox::SandboxProvider,
    },
};

const TO: &str = "919876543210";

/// What the scripted provider does with each send.
#[derive(Clone, Copy)]
enum Script {
    /// Delegate to the sandbox.
    Deliver,
    /// Never answer (a gateway crash mid-send).
    Hang,
    /// Fail transiently this many times per message, then deliver.
    FlakyTimes(u32),
    /// Always fail transiently.
    AlwaysDown,
    /// Deliver after this many milliseconds.
    Slow(u64),
    /// Fail the first attempt of about a third of the messages (chosen by id) transiently.
    FlakyThird,
}

/// The sandbox, counting every send attempt per message id.
struct Scripted {
    inner: SandboxProvider,
    script: Script,
    calls: Arc<Mutex<HashMap<Uuid, u32>>>,
    sent: Arc<Mutex<Vec<Uuid>>>,
}

/// A sandbox connection whose sends follow the script.
struct ScriptedConnection {
    inner: Arc<dyn Connection>,
    script: Script,
    calls: Arc<Mutex<HashMap<Uuid, u32>>>,
    /// Every accepted send, in the order the provider accepted them.
    sent: Arc<Mutex<Vec<Uuid>>>,
}

#[async_trait::async_trait]
impl Provider for Scripted {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sandbox
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn start(&self, ctx: SessionContext) -> Result<Arc<dyn Connection>, ProviderError> {
        Ok(Arc::new(ScriptedConnection {
            inner: self.inner.start(ctx).await?,
            script: self.script,
            calls: self.calls.clone(),
            sent: self.sent.clone(),
        }))
    }
}

#[async_trait::async_trait]
impl Connection for ScriptedConnection {
    async fn send(&self, msg: OutboundMessage) -> Result<SentMessage, SendError> {
        let id = msg.message_id;
        let sent = self.attempt(msg).await;
        if sent.is_ok() {
            self.sent.lock().unwrap().push(id);
        }
        sent
    }
    async fn control(&self, command: Control) -> Result<ControlReply, ProviderError> {
        self.inner.control(command).await
    }
    async fn logout(&self) -> Result<(), ProviderError> {
        self.inner.logout().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

impl ScriptedConnection {
    async fn attempt(&self, msg: OutboundMessage) -> Result<SentMessage, SendError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(msg.message_id).or_default();
            *n += 1;
            *n
        };
        match self.script {
            Script::Deliver => self.inner.send(msg).await,
            Script::Hang => std::future::pending().await,
            Script::FlakyTimes(k) if n <= k => Err(SendError::Transient("socket closed".into())),
            Script::FlakyTimes(_) => self.inner.send(msg).await,
            Script::AlwaysDown => Err(SendError::Transient("socket closed".into())),
            Script::Slow(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                self.inner.send(msg).await
            }
            Script::FlakyThird if n == 1 && flaky(msg.message_id) => {
                Err(SendError::Transient("socket closed".into()))
            }
            Script::FlakyThird => self.inner.send(msg).await,
        }
    }
}

/// The messages [`Script::FlakyThird`] fails once.
fn flaky(id: Uuid) -> bool {
    id.as_u128().is_multiple_of(3)
}

fn scripted(
    app_cfg: &wagate::config::Config,
    clock: &ManualClock,
    script: Script,
    calls: &Arc<Mutex<HashMap<Uuid, u32>>>,
) -> Providers {
    scripted_logged(app_cfg, clock, script, calls, &Arc::default())
}

/// [`scripted`], also logging accepted sends in order to `sent`.
fn scripted_logged(
    app_cfg: &wagate::config::Config,
    clock: &ManualClock,
    script: Script,
    calls: &Arc<Mutex<HashMap<Uuid, u32>>>,
    sent: &Arc<Mutex<Vec<Uuid>>>,
) -> Providers {
    let clock: Arc<dyn Clock> = Arc::new(clock.clone());
    Providers::default().with(Arc::new(Scripted {
        inner: SandboxProvider::new(app_cfg.sandbox.clone(), clock),
        script,
        calls: calls.clone(),
        sent: sent.clone(),
    }))
}

async fn message(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/messages/{id}"), Auth::Bearer(token))
        .await
        .body["data"]
        .clone()
}

/// Moves the clock a minute at a time until the message has `stamp` (`sentAt`, `failedAt`).
async fn run_clock_until(
    app: &TestApp,
    token: &str,
    id: &str,
    clock: &ManualClock,
    stamp: &str,
) -> Value {
    let mut m = Value::Null;
    for _ in 0..200 {
        m = app
            .get(&format!("/api/messages/{id}"), Auth::Bearer(token))
            .await
            .body;
        assert_eq!(m["success"], true, "{m}");
        m = m["data"].clone();
        if m[stamp].is_string() {
            return m;
        }
        clock.advance(chrono::Duration::seconds(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message never got {stamp}: {m}");
}

#[tokio::test]
async fn queued_messages_survive_a_restart_and_are_sent_exactly_once() {
    // First run: the API accepts messages, but this instance has no dispatcher.
    let app = TestApp::spawn_with(|c| c.messaging.dispatch.enabled = false).await;
    let token = app.token("restart@outbox.test").await;
    let session = app.connected_session(&token, "+14155550201").await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(app.queue_text(&token, &session, TO, &format!("#{i}")).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in &ids {
        assert_eq!(message(&app, &token, id).await["status"], "queued");
    }
    let (mut cfg, dir, clock) = app.stop().await;

    // Second run on the same data, with a dispatcher and a provider that counts sends.
    cfg.messaging.dispatch.enabled = true;
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let providers = scripted(&cfg, &clock, Script::Deliver, &calls);
    let app = TestApp::start_with(cfg, dir, clock.clone(), Some(providers)).await;
    // Messages wait (uncounted) while the session reconnects, then go out.
    app.wait_status(&token, &session, "connected").await;
    clock.advance(chrono::Duration::seconds(1));
    for id in &ids {
        let m = app
            .wait_message(&token, id, "sent", |d| d["sentAt"].is_string())
            .await;
        assert_eq!(m["attempts"], 1, "{m}");
    }
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), ids.len(), "every message was sent");
    for id in &ids {
        assert_eq!(calls[&Uuid::parse_str(id).unwrap()], 1, "sent exactly once");
    }
}

#[tokio::test]
async fn a_claim_abandoned_by_a_crash_is_taken_over_after_its_lease() {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let cfg = common::test_config(dir.path()).await;
    let clock = ManualClock::default();
    let hang = scripted(&cfg, &clock, Script::Hang, &calls);
    let app = TestApp::start_with(cfg, dir, clock, Some(hang)).await;
    let token = app.token("crash@outbox.test").await;
    let session = app.connected_session(&token, "+14155550202").await;
    let id = app.queue_text(&token, &session, TO, "in flight").await;
    // Wait until the first instance has claimed it and is stuck inside the provider.
    for _ in 0..200 {
        if !calls.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "claimed and handed to the provider"
    );
    let m = message(&app, &token, &id).await;
    assert_eq!(m["status"], "queued");
    assert_eq!(m["attempts"], 1);
    let (cfg, dir, clock) = app.stop().await; // the "crash": its claim is never released

    let delivered = Arc::new(Mutex::new(HashMap::new()));
    let providers = scripted(&cfg, &clock, Script::Deliver, &delivered);
    let app = TestApp::start_with(cfg.clone(), dir, clock.clone(), Some(providers)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        delivered.lock().unwrap().is_empty(),
        "the lease still holds: nobody else may send it yet"
    );
    clock.advance(chrono::Duration::from_std(cfg.messaging.dispatch.lease).unwrap());
    let m = app
        .wait_message(&token, &id, "sent", |d| d["sentAt"].is_string())
        .await;
    assert_eq!(m["attempts"], 2, "{m}");
    assert_eq!(delivered.lock().unwrap()[&Uuid::parse_str(&id).unwrap()], 1);
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_then_succeed_or_give_up() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut cfg = common::test_config(dir.path()).await;
    cfg.messaging.dispatch.backoff_base = Duration::from_secs(10);
    cfg.messaging.dispatch.max_attempts = 3;
    // The test moves the clock a minute at a time: claims and tokens must outlast that.
    cfg.messaging.dispatch.lease = Duration::from_secs(3600);
    cfg.access_token_ttl = Duration::from_secs(24 * 3600);
    cfg.refresh_token_ttl = Duration::from_secs(48 * 3600);
    let clock = ManualClock::default();
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let flaky = scripted(&cfg, &clock, Script::FlakyTimes(2), &calls);
    let app = TestApp::start_with(cfg.clone(), dir, clock.clone(), Some(flaky)).await;
    let token = app.token("flaky@outbox.test").await;
    let session = app.connected_session(&token, "+14155550203").await;
    let id = app.queue_text(&token, &session, TO, "retry me").await;
    let m = app
        .wait_message(&token, &id, "retrying", |d| {
            d["attempts"] == 1 && d["error"].is_string()
        })
        .await;
    assert_eq!(m["status"], "queued");
    assert_eq!(m["error"], "socket closed");
    // Not retried before the backoff delay (10 s, plus jitter) has passed...
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message(&app, &token, &id).await["attempts"], 1);
    // ...then retried: the second attempt fails too, the third (after 20 s+) goes through.
    clock.advance(chrono::Duration::seconds(13));
    app.wait_message(&token, &id, "second attempt", |d| d["attempts"] == 2)
        .await;
    let m = run_clock_until(&app, &token, &id, &clock, "sentAt").await;
    assert!(m["sentAt"].is_string(), "{m}");
    assert_eq!(m["attempts"], 3);
    assert!(m["error"].is_null(), "the error clears once sent: {m}");
    let (cfg, dir, clock) = app.stop().await;

    let down = scripted(&cfg, &clock, Script::AlwaysDown, &calls);
    let app = TestApp::start_with(cfg, dir, clock.clone(), Some(down)).await;
    app.wait_status(&token, &session, "connected").await;
    let id = app.queue_text(&token, &session, TO, "never").await;
    let m = run_clock_until(&app, &token, &id, &clock, "failedAt").await;
    assert_eq!(m["attempts"], 3);
    assert!(
        m["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 3 attempts"),
        "{m}"
    );
}

#[tokio::test]
async fn concurrent_claims_never_overlap() {
    // Many claimers race over one queue of twelve chats (on PostgreSQL: separate connections
    // using FOR UPDATE SKIP LOCKED); every message is claimed exactly once, in runs of one
    // chat each, oldest first.
    let app = TestApp::spawn_with(|c| c.messaging.dispatch.enabled = false).await;
    let token = app.token("race@outbox.test").await;
    let session = app.connected_session(&token, "+14155550204").await;
    let mut ids = Vec::new();
    for i in 0..120 {
        let to = format!("91987654{:04}", 2000 + i % 12);
        let id = app.queue_text(&token, &session, &to, &format!("{i}")).await;
        ids.push(Uuid::parse_str(&id).unwrap());
    }
    let now = app.state.clock.now();
    let lease = now + chrono::Duration::seconds(60);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let db = app.state.db.clone();
        let me = app.state.cfg.runtime.instance_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let runs = wagate::repo::message_claims::claim_due(&db, now, lease, 7, 28, &me)
                    .await
                    .unwrap();
                if runs.is_empty() {
                    return mine;
                }
                mine.extend(runs);
            }
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for run in t.await.unwrap() {
            assert!(
                run.iter().all(|m| m.phone == run[0].phone),
                "a run is one chat"
            );
            let order: Vec<Uuid> = run.iter().map(|m| m.id).collect();
            let mut sorted = order.clone();
            sorted.sort_by_key(|id| ids.iter().position(|x| x == id));
            assert_eq!(order, sorted, "a run is oldest first");
            for m in run {
                assert!(seen.insert(m.id), "{} claimed twice", m.id);
                assert_eq!(m.attempts, 1);
            }
        }
    }
    assert_eq!(seen, ids.iter().copied().collect::<HashSet<_>>());
}

#[tokio::test]
async fn a_chat_waits_for_its_older_messages() {
    use wagate::repo::message_claims::claim_due;
    let app = TestApp::spawn_with(|c| c.messaging.dispatch.enabled = false).await;
    let reg = app.register("chat-wait@outbox.test").await;
    let token = reg["accessToken"].as_str().unwrap().to_owned();
    let tenant =
        wagate::domain::TenantId(Uuid::parse_str(reg["tenant"]["id"].as_str().unwrap()).unwrap());
    let session = app.connected_session(&token, "+14155550208").await;
    let mut chat = Vec::new();
    for text in ["a", "b", "c"] {
        let id = app.queue_text(&token, &session, TO, text).await;
        chat.push(Uuid::parse_str(&id).unwrap());
    }
    let other = app.queue_text(&token, &session, "919876545000", "d").await;
    let (a, b, c) = (chat[0], chat[1], chat[2]);
    let db = &app.state.db;
    // Once this instance's session lease has lapsed, instances "x" and "y" may both claim.
    let t = app.state.clock.now() + chrono::Duration::seconds(120);
    let lease = t + chrono::Duration::seconds(60);
    let ids = |runs: Vec<Vec<entity::message::Model>>| -> Vec<Uuid> {
        runs.into_iter().flatten().map(|m| m.id).collect()
    };
    let claim = |at, until, limit, who: &'static str| async move {
        ids(claim_due(db, at, until, limit, 64, who).await.unwrap())
    };
    assert_eq!(claim(t, lease, 1, "x").await, vec![a]);
    // x holds the oldest: y may take the other chat only.
    let y = claim(t, lease, 10, "y").await;
    assert_eq!(y, vec![Uuid::parse_str(&other).unwrap()]);
    // x's own claim does not hold x back: the chat is x's, in order.
    assert_eq!(claim(t, lease, 10, "x").await, vec![b, c]);

    // a fails and waits for a retry, holding its chat; b and c go back uncounted.
    let retry_at = t + chrono::Duration::seconds(30);
    assert!(
        wagate::repo::messages::reschedule(db, tenant, a, 1, true, Some("down"), retry_at, t)
            .await
            .unwrap()
    );
    let place = |id: Uuid| async move {
        let m = <entity::message::Entity as sea_orm::EntityTrait>::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        wagate::repo::chat_queue::Place {
            id,
            session: m.session_id,
            phone: m.phone,
            created_at: m.created_at,
        }
    };
    let held = wagate::repo::chat_queue::hold_chat(db, tenant, &place(a).await, retry_at, None)
        .await
        .unwrap();
    assert_eq!(held, 2, "b and c are held behind a");
    for id in [b, c] {
        wagate::repo::chat_queue::give_back(db, tenant, id, 1, t)
            .await
            .unwrap();
    }
    // Nobody may send b or c before a.
    assert!(claim(t, lease, 10, "y").await.is_empty());
    assert!(claim(t, lease, 10, "x").await.is_empty());
    // A message accepted as the hold was written is due at once, but its chat's head holds it
    // back; the lift moves it behind the hold.
    let d = Uuid::parse_str(&app.queue_text(&token, &session, TO, "d").await).unwrap();
    assert!(claim(t, lease, 10, "y").await.is_empty());
    let lifted = wagate::repo::message_claims::lift_held_back(db, t, 64)
        .await
        .unwrap();
    assert_eq!(lifted, 1);
    let due = |id| async move {
        <entity::message::Entity as sea_orm::EntityTrait>::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap()
            .next_attempt_at
    };
    assert_eq!(due(d).await, due(a).await, "d waits for a");
    // When a is due the whole chat goes, in order, as one run.
    let later = retry_at + chrono::Duration::seconds(1);
    let lease = later + chrono::Duration::seconds(60);
    let runs = claim_due(db, later, lease, 10, 64, "y").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(ids(runs), vec![a, b, c, d]);
}

#[tokio::test]
async fn leases_of_a_dead_instance_hold_its_chats() {
    // x claims a chat's first message, then (in a later claim, with a later lease) the second,
    // and dies. Once the first lease has run out, y may send the first again but nothing after
    // the second until the second's lease runs out too.
    use wagate::repo::message_claims::claim_due;
    let app = TestApp::spawn_with(|c| c.messaging.dispatch.enabled = false).await;
    let token = app.token("dead-lease@outbox.test").await;
    let session = app.connected_session(&token, "+14155550209").await;
    let mut chat = Vec::new();
    for text in ["a", "b", "c"] {
        chat.push(Uuid::parse_str(&app.queue_text(&token, &session, TO, text).await).unwrap());
    }
    let db = &app.state.db;
    let t = app.state.clock.now() + chrono::Duration::seconds(120);
    let s = chrono::Duration::seconds;
    let ids = |runs: Vec<Vec<entity::message::Model>>| -> Vec<Uuid> {
        runs.into_iter().flatten().map(|m| m.id).collect()
    };
    assert_eq!(
        ids(claim_due(db, t, t + s(60), 1, 64, "x").await.unwrap()),
        vec![chat[0]]
    );
    assert_eq!(
        ids(claim_due(db, t + s(30), t + s(90), 1, 64, "x")
            .await
            .unwrap()),
        vec![chat[1]]
    );
    assert_eq!(
        ids(claim_due(db, t + s(70), t + s(130), 10, 64, "y")
            .await
            .unwrap()),
        vec![chat[0]]
    );
    assert_eq!(
        ids(claim_due(db, t + s(100), t + s(160), 10, 64, "y")
            .await
            .unwrap()),
        vec![chat[1], chat[2]]
    );
}

#[tokio::test]
async fn each_chat_is_sent_in_order_under_transient_failures() {
    // A third of the messages fail their first attempt. A failed message goes back to wait
    // for its retry, and the messages behind it in its chat wait with it (uncounted) instead
    // of overtaking it.
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut cfg = common::test_config(dir.path()).await;
    cfg.messaging.dispatch.batch = 3;
    cfg.messaging.dispatch.concurrency = 3;
    cfg.messaging.dispatch.backoff_base = Duration::from_secs(1);
    cfg.messaging.dispatch.backoff_max = Duration::from_secs(2);
    // The clock moves in steps below; no claim may run out meanwhile (that would be a resend).
    cfg.messaging.dispatch.lease = Duration::from_secs(3600);
    let clock = ManualClock::default();
    let flaky_provider = scripted_logged(&cfg, &clock, Script::FlakyThird, &calls, &sent);
    let app = TestApp::start_with(cfg, dir, clock.clone(), Some(flaky_provider)).await;
    let token = app.token("order@outbox.test").await;
    let session = app.connected_session(&token, "+14155550207").await;
    let mut chats: HashMap<String, Vec<Uuid>> = HashMap::new();
    for i in 0..48 {
        let to = format!("91987654{:04}", 4000 + i % 4);
        let id = app
            .queue_text(&token, &session, &to, &format!("#{i}"))
            .await;
        chats
            .entry(to)
            .or_default()
            .push(Uuid::parse_str(&id).unwrap());
    }
    let all: Vec<Uuid> = chats.values().flatten().copied().collect();
    assert!(all.iter().any(|id| flaky(*id)), "some message fails once");
    for _ in 0..400 {
        if sent.lock().unwrap().len() >= all.len() {
            break;
        }
        clock.advance(chrono::Duration::seconds(3));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), all.len(), "every message was accepted once");
    for (to, queued) in &chats {
        let order: Vec<Uuid> = sent
            .iter()
            .filter(|id| queued.contains(id))
            .copied()
            .collect();
        assert_eq!(
            &order, queued,
            "chat {to} was sent in the order it was queued"
        );
    }
    for id in &all {
        let m = app
            .wait_message(&token, &id.to_string(), "sent", |d| d["sentAt"].is_string())
            .await;
        // Only the provider's refusal counts as an attempt; being given back does not.
        let expected = if flaky(*id) { 2 } else { 1 };
        assert_eq!(m["attempts"], expected, "{m}");
        assert_eq!(calls.lock().unwrap()[id], expected as u32, "{m}");
    }
}

#[tokio::test]
async fn two_dispatching_instances_send_each_message_once() {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut cfg = common::test_config(dir.path()).await;
    cfg.messaging.dispatch.batch = 5;
    cfg.messaging.dispatch.concurrency = 4;
    let clock = ManualClock::default();
    let a = TestApp::start_with(
        cfg.clone(),
        dir.clone(),
        clock.clone(),
        Some(scripted(&cfg, &clock, Script::Deliver, &calls)),
    )
    .await;
    let mut cfg_b = cfg.clone();
    cfg_b.runtime.instance_id = wagate::config::default_instance_id();
    let b = TestApp::start_with(
        cfg_b.clone(),
        dir.clone(),
        clock.clone(),
        Some(scripted(&cfg_b, &clock, Script::Deliver, &calls)),
    )
    .await;
    let token = a.token("two@outbox.test").await;
    let session = a.connected_session(&token, "+14155550205").await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let app = if i % 2 == 0 { &a } else { &b };
        ids.push(app.queue_text(&token, &session, TO, &format!("{i}")).await);
    }
    for id in &ids {
        a.wait_message(&token, id, "sent", |d| d["sentAt"].is_string())
            .await;
    }
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), ids.len());
    assert!(calls.values().all(|n| *n == 1), "{calls:?}");
}

#[tokio::test]
async fn a_graceful_stop_finishes_sends_in_flight_and_sends_nothing_twice() {
    let calls = Arc::new(Mutex::new(HashMap::new()));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut cfg = common::test_config(dir.path()).await;
    cfg.runtime.shutdown_grace = Duration::from_secs(10);
    let clock = ManualClock::default();
    let slow = scripted(&cfg, &clock, Script::Slow(400), &calls);
    let app = TestApp::start_with(cfg, dir, clock, Some(slow)).await;
    let token = app.token("drain@outbox.test").await;
    let session = app.connected_session(&token, "+14155550205").await;
    // Four chats, ten messages each: at most four sends are in flight at any time.
    let mut ids = Vec::new();
    for i in 0..40 {
        let to = format!("91987654{:04}", 3000 + i % 4);
        ids.push(
            app.queue_text(&token, &session, &to, &format!("#{i}"))
                .await,
        );
    }
    for _ in 0..200 {
        if !calls.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!calls.lock().unwrap().is_empty(), "sends started");
    let (cfg, dir, clock) = app.stop().await;
    let first_run: HashMap<Uuid, u32> = calls.lock().unwrap().clone();
    assert!(
        first_run.len() < ids.len(),
        "the stop came while messages were still queued"
    );

    // The restarted gateway sends the rest; no message is handed to a provider twice.
    let providers = scripted(&cfg, &clock, Script::Deliver, &calls);
    let app = TestApp::start_with(cfg, dir, clock.clone(), Some(providers)).await;
    app.wait_status(&token, &session, "connected").await;
    for id in &ids {
        let m = app
            .wait_message(&token, id, "sent", |d| d["sentAt"].is_string())
            .await;
        let uuid = Uuid::parse_str(id).unwrap();
        if first_run.contains_key(&uuid) {
            // Finished and recorded during the stop: never claimed again.
            assert_eq!(m["attempts"], 1, "{m}");
        }
    }
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), ids.len(), "every message was sent");
    for (id, n) in &calls {
        assert_eq!(*n, 1, "message {id} was handed to the provider {n} times");
    }
}

#[tokio::test]
async fn only_the_owner_claims_its_sessions_messages() {
    let app = TestApp::spawn_with(|c| c.messaging.dispatch.enabled = false).await;
    let token = app.token("owner@outbox.test").await;
    let session = app.connected_session(&token, "+14155550206").await;
    let id = app.queue_text(&token, &session, TO, "mine").await;
    let me = app.state.cfg.runtime.instance_id.clone();
    let now = app.state.clock.now();
    let lease = now + chrono::Duration::seconds(60);
    let db = &app.state.db;
    // This instance owns the session (its connection runs here): a peer claims nothing.
    let peer = wagate::repo::message_claims::claim_due(db, now, lease, 10, 64, "peer-instance")
        .await
        .unwrap();
    assert!(
        peer.is_empty(),
        "a peer claimed a message of a session it does not own"
    );
    let s = app
        .get(&format!("/api/v1/whatsapp/{session}"), Auth::Bearer(&token))
        .await;
    assert_eq!(s.body["data"]["ownerInstance"], me.as_str());
    // Once this instance's lease has lapsed (it was killed), the peer may claim it.
    let later = now + chrono::Duration::seconds(120);
    let peer = wagate::repo::message_claims::claim_due(
        db,
        later,
        later + chrono::Duration::seconds(60),
        10,
        64,
        "peer-instance",
    )
    .await
    .unwrap();
    assert_eq!(peer.len(), 1);
    assert_eq!(peer[0].len(), 1);
    assert_eq!(peer[0][0].id.to_string(), id);
}
