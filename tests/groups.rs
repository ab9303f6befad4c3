//! Group chats: a send `to` a group jid goes to the group (stored under its jid, in order per
//! group like any chat), a reply to a message received in a group quotes it there, and a
//! malformed group id is a 400 on `to`.

mod common;

use common::{Auth, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const GROUP: &str = "120363025246125486@g.us";

#[tokio::test]
async fn messages_go_to_groups_by_their_jid() {
    let app = TestApp::spawn().await;
    let token = app.token("groups@example.com").await;
    let session = app.connected_session(&token, "+14155550100").await;

    let r = app.send_text(&token, &session, GROUP, "hello group").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["to"], "120363025246125486", "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let m = app
        .wait_message(&token, &id, "sent", |m| m["status"] != "queued")
        .await;
    assert_eq!(m["status"], "sent", "{m}");
    assert_eq!(m["remoteJid"], GROUP, "{m}");
    assert_eq!(m["to"], "120363025246125486", "{m}");

    // The older group id form (creator's number and a time) is a group too; anything else
    // before @g.us is not.
    let r = app
        .send_text(&token, &session, "14155550100-1600000000@g.us", "old style")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for bad in ["abc@g.us", "@g.us", "-1@g.us", "12 34@g.us"] {
        let r = app.send_text(&token, &session, bad, "x").await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(
            r.body["errors"]["to"].as_str().unwrap().contains("group"),
            "{bad}: {}",
            r.body
        );
    }
    // A location to the group as well.
    let r = app
        .post(
            "/api/messages/send-location",
            Auth::Bearer(&token),
            json!({"sessionId": session, "to": GROUP, "latitude": 1.0, "longitude": 2.0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
