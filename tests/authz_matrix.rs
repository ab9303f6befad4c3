//! The authorization matrix: every REST operation and every GraphQL root field, called with a
//! user's access token, an API key with the default scopes, a key with every grantable scope,
//! another tenant's token and key, and no credentials. Each outcome is compared with one table
//! of expectations kept here, one row per operation; an operation in the OpenAPI document or
//! the GraphQL schema without a row fails the test, and so does a row for an operation that no
//! longer exists.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use common::{Auth, GqlWs, PNG_1X1, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cred {
    /// Tenant A's owner (access token).
    User,
    /// Tenant A's key with the default scopes.
    KeyDefault,
    /// Tenant A's key with every scope a key can have.
    KeyAll,
    /// Tenant B's owner.
    OtherUser,
    /// Tenant B's key with every scope.
    OtherKey,
    /// No credentials.
    Nobody,
}

const CREDS: [Cred; 6] = [
    Cred::User,
    Cred::KeyDefault,
    Cred::KeyAll,
    Cred::OtherUser,
    Cred::OtherKey,
    Cred::Nobody,
];

/// What a call must end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Allowed: one of the row's success statuses (GraphQL: no error).
    Ok,
    /// Allowed, acting in the caller's own tenant: success, and nothing of tenant A in it.
    Own,
    /// 403 FORBIDDEN.
    Forbidden,
    /// 401 UNAUTHORIZED.
    Unauth,
    /// 404 NOT_FOUND, and nothing of tenant A in it.
    NotFound,
}
use Want::{Forbidden as F, NotFound as N, Ok as O, Own, Unauth as U};

/// A JWT-only route: keys get 401 (wrong scheme), other tenants `other`.
const fn jwt(other: Want) -> [Want; 6] {
    [O, U, U, other, U, U]
}
/// An API-key route whose scope is in the default set.
const fn ext(other: Want) -> [Want; 6] {
    [U, O, O, U, other, U]
}
/// An API-key route whose scope must be asked for.
const fn ext_extra(other: Want) -> [Want; 6] {
    [U, F, O, U, other, U]
}
/// Either credential; scope in the default set.
const fn any(other: Want) -> [Want; 6] {
    [O, O, O, other, other, U]
}
/// Either credential; a scope that must be asked for.
const fn any_extra(other: Want) -> [Want; 6] {
    [O, F, O, other, other, U]
}
/// Only a user (never a key), e.g. API key management.
const fn user_only(other: Want) -> [Want; 6] {
    [O, F, F, other, F, U]
}
/// Public: everyone, acting on their own.
const PUBLIC: [Want; 6] = [O, O, O, O, O, O];

enum Body {
    None,
    Json(&'static str),
    Csv(&'static str),
}

struct Rest {
    method: &'static str,
    path: &'static str,
    body: Body,
    ok: &'static [u16],
    want: [Want; 6],
}

const fn rest(
    method: &'static str,
    path: &'static str,
    body: Body,
    ok: &'static [u16],
    want: [Want; 6],
) -> Rest {
    Rest {
        method,
        path,
        body,
        ok,
        want,
    }
}

const S200: &[u16] = &[200];
const S201: &[u16] = &[201];
const S202: &[u16] = &[202];

const TEXT: Body = Body::Json(r#"{"sessionId":"$conn","to":"+14155550199","text":"hi"}"#);
const LOCATION: Body = Body::Json(
    r#"{"sessionId":"$conn","to":"+14155550199","latitude":12.5,"longitude":77.1,"name":"HQ"}"#,
);
const IMAGE: Body =
    Body::Json(r#"{"sessionId":"$conn","to":"+14155550199","file":"$png","caption":"c"}"#);
const DOCUMENT: Body =
    Body::Json(r#"{"sessionId":"$conn","to":"+14155550199","file":"$doc","fileName":"notes.txt"}"#);
const VIDEO: Body = Body::Json(r#"{"sessionId":"$conn","to":"+14155550199","file":"$mp4"}"#);
const AUDIO: Body = Body::Json(r#"{"sessionId":"$conn","to":"+14155550199","file":"$ogg"}"#);
const WEBHOOK: Body =
    Body::Json(r#"{"url":"http://127.0.0.1:9/hook","sessionIds":["$conn"],"events":["*"]}"#);
const CONTACT: Body = Body::Json(r#"{"phone":"$newphone","name":"New"}"#);

/// One row per REST operation, in the order they run (reads before the calls that use up
/// fixtures).
#[rustfmt::skip]
fn rest_rows() -> Vec<Rest> {
    use Body::None as E;
    vec![
        // Public.
        rest("POST", "/api/auth/register", Body::Json(r#"{"email":"$email","password":"correct-horse-battery","name":"N"}"#), S201, PUBLIC),
        rest("POST", "/api/auth/login", Body::Json(r#"{"email":"$owner","password":"correct-horse-battery"}"#), S200, PUBLIC),
        rest("POST", "/api/auth/refresh", Body::Json(r#"{"refreshToken":"$refresh"}"#), S200, PUBLIC),
        rest("POST", "/api/auth/logout", Body::Json(r#"{"refreshToken":"$refresh2"}"#), S200, PUBLIC),
        rest("GET", "/healthz", E, S200, PUBLIC),
        rest("GET", "/readyz", E, S200, PUBLIC),
        // Who am I.
        rest("GET", "/api/auth/me", E, S200, jwt(Own)),
        rest("GET", "/api/external/me", E, S200, [U, O, O, U, Own, U]),
        // API keys: users only.
        rest("GET", "/api/external/api-keys", E, S200, user_only(Own)),
        rest("POST", "/api/external/api-keys", Body::Json(r#"{"name":"k"}"#), S201, user_only(Own)),
        rest("DELETE", "/api/external/api-keys/$apikey", E, S200, user_only(N)),
        // Sessions.
        rest("GET", "/api/v1/whatsapp", E, S200, jwt(Own)),
        rest("POST", "/api/v1/whatsapp", Body::Json(r#"{"name":"n"}"#), S201, jwt(Own)),
        rest("GET", "/api/v1/whatsapp/$conn", E, S200, jwt(N)),
        rest("PATCH", "/api/v1/whatsapp/$conn", Body::Json(r#"{"name":"renamed"}"#), S200, jwt(N)),
        rest("GET", "/api/v1/whatsapp/$conn/status", E, S200, jwt(N)),
        rest("POST", "/api/v1/whatsapp/$idle/connect", E, S200, jwt(N)),
        rest("GET", "/api/v1/whatsapp/$idle/qr", E, &[200, 404], jwt(N)),
        rest("POST", "/api/v1/whatsapp/$idle/pair-code", Body::Json(r#"{"phoneNumber":"+14155550188"}"#), S200, jwt(N)),
        rest("GET", "/api/v1/whatsapp/$conn/check/+14155550199", E, S200, jwt(N)),
        rest("POST", "/api/v1/whatsapp/$idle/sandbox/scan", E, S200, jwt(N)),
        rest("POST", "/api/v1/whatsapp/$conn/sandbox/inbound", Body::Json(r#"{"from":"+14155550123","text":"hello"}"#), S200, jwt(N)),
        rest("POST", "/api/v1/whatsapp/$idle/disconnect", E, S200, jwt(N)),
        rest("POST", "/api/v1/whatsapp/$paired/logout", E, S200, jwt(N)),
        rest("DELETE", "/api/v1/whatsapp/$doomed", E, S200, jwt(N)),
        rest("GET", "/api/external/sessions", E, S200, ext(Own)),
        rest("POST", "/api/external/sessions", Body::Json(r#"{"name":"n"}"#), S201, ext_extra(Own)),
        rest("GET", "/api/external/sessions/$conn", E, S200, ext(N)),
        rest("PATCH", "/api/external/sessions/$conn", Body::Json(r#"{"name":"renamed"}"#), S200, ext_extra(N)),
        rest("GET", "/api/external/sessions/$conn/status", E, S200, ext(N)),
        rest("POST", "/api/external/sessions/$idle/connect", E, S200, ext_extra(N)),
        rest("GET", "/api/external/sessions/$idle/qr", E, &[200, 404], ext(N)),
        rest("POST", "/api/external/sessions/$idle/pair-code", Body::Json(r#"{"phoneNumber":"+14155550188"}"#), S200, ext_extra(N)),
        rest("GET", "/api/external/sessions/$conn/check/+14155550199", E, S200, ext(N)),
        rest("POST", "/api/external/sessions/$idle/disconnect", E, S200, ext_extra(N)),
        rest("POST", "/api/external/sessions/$paired/logout", E, S200, ext_extra(N)),
        rest("DELETE", "/api/external/sessions/$doomed", E, S200, ext_extra(N)),
        // Messages.
        rest("POST", "/api/messages/send-text", TEXT, S200, jwt(N)),
        rest("POST", "/api/messages/send-location", LOCATION, S200, jwt(N)),
        rest("POST", "/api/messages/send-image", IMAGE, S200, jwt(N)),
        rest("POST", "/api/messages/send-document", DOCUMENT, S200, jwt(N)),
        rest("POST", "/api/messages/send-video", VIDEO, S200, jwt(N)),
        rest("POST", "/api/messages/send-audio", AUDIO, S200, jwt(N)),
        rest("POST", "/api/external/messages/send-text", TEXT, S200, ext(N)),
        rest("POST", "/api/external/messages/send-location", LOCATION, S200, ext(N)),
        rest("POST", "/api/external/messages/send-image", IMAGE, S200, ext(N)),
        rest("POST", "/api/external/messages/send-document", DOCUMENT, S200, ext(N)),
        rest("POST", "/api/external/messages/send-video", VIDEO, S200, ext(N)),
        rest("POST", "/api/external/messages/send-audio", AUDIO, S200, ext(N)),
        rest("GET", "/api/messages", E, S200, jwt(Own)),
        rest("GET", "/api/messages?sessionId=$conn", E, S200, jwt(N)),
        rest("GET", "/api/messages/$msg", E, S200, jwt(N)),
        rest("GET", "/api/messages/$media/media", E, S200, jwt(N)),
        rest("GET", "/api/external/messages/$msg", E, S200, ext(N)),
        // Contacts, first API.
        rest("GET", "/api/contacts", E, S200, jwt(Own)),
        rest("GET", "/api/contacts?groupId=$group", E, S200, jwt(N)),
        rest("POST", "/api/contacts", CONTACT, S201, jwt(Own)),
        rest("GET", "/api/contacts/tags", E, S200, jwt(Own)),
        rest("GET", "/api/contacts/export", E, S200, jwt(Own)),
        rest("POST", "/api/contacts/import", Body::Csv("phone,name\n+14155550171,Imported\n"), S200, jwt(Own)),
        rest("GET", "/api/contacts/$contact", E, S200, jwt(N)),
        rest("PATCH", "/api/contacts/$contact", Body::Json(r#"{"name":"Changed"}"#), S200, jwt(N)),
        rest("GET", "/api/external/contacts", E, S200, ext(Own)),
        rest("GET", "/api/contacts/groups", E, S200, jwt(Own)),
        rest("POST", "/api/contacts/groups", Body::Json(r#"{"name":"$groupname"}"#), S201, jwt(Own)),
        rest("GET", "/api/contacts/groups/$group", E, S200, jwt(N)),
        rest("PATCH", "/api/contacts/groups/$group", Body::Json(r#"{"description":"d"}"#), S200, jwt(N)),
        rest("POST", "/api/contacts/groups/$group/members", Body::Json(r#"{"contactIds":["$contact"]}"#), S200, jwt(N)),
        rest("DELETE", "/api/contacts/groups/$group/members", Body::Json(r#"{"contactIds":["$contact"]}"#), S200, jwt(N)),
        rest("DELETE", "/api/contacts/groups/$dgroup", E, S200, jwt(N)),
        rest("DELETE", "/api/contacts/$dcontact", E, S200, jwt(N)),
        // Contacts, second vendor's API (token or key).
        rest("GET", "/api/whatsapp/contacts", E, S200, any(Own)),
        rest("GET", "/api/whatsapp/contacts?groupId=$group", E, S200, any(N)),
        rest("POST", "/api/whatsapp/contacts", Body::Json(r#"{"userNumber":"$newphone2","name":"V"}"#), S201, any(Own)),
        rest("POST", "/api/whatsapp/contacts/bulk", Body::Json(r#"{"contacts":[{"userNumber":"$newphone3","name":"B"}]}"#), S200, any(Own)),
        rest("GET", "/api/whatsapp/contacts/contact_$vcontact", E, S200, any(N)),
        rest("PATCH", "/api/whatsapp/contacts/contact_$vcontact", Body::Json(r#"{"name":"Changed"}"#), S200, any(N)),
        rest("DELETE", "/api/whatsapp/contacts/contact_$vdcontact", E, S200, any(N)),
        // Webhooks.
        rest("GET", "/api/webhooks", E, S200, jwt(Own)),
        rest("POST", "/api/webhooks", WEBHOOK, S201, jwt(N)),
        rest("GET", "/api/webhooks/$hook", E, S200, jwt(N)),
        rest("PATCH", "/api/webhooks/$hook", Body::Json(r#"{"description":"changed"}"#), S200, jwt(N)),
        rest("GET", "/api/webhooks/$hook/secret", E, S200, jwt(N)),
        rest("POST", "/api/webhooks/$hook/rotate-secret", E, S200, jwt(N)),
        rest("GET", "/api/webhooks/$hook/deliveries", E, S200, jwt(N)),
        rest("POST", "/api/webhooks/$hook/deliveries/$delivery/retry", E, &[202, 409], jwt(N)),
        rest("POST", "/api/webhooks/$hook/test", E, S202, jwt(N)),
        rest("DELETE", "/api/webhooks/$dhook", E, S200, jwt(N)),
        rest("GET", "/api/external/webhooks", E, S200, ext_extra(Own)),
        rest("POST", "/api/external/webhooks", WEBHOOK, S201, ext_extra(N)),
        rest("GET", "/api/external/webhooks/$hook", E, S200, ext_extra(N)),
        rest("PATCH", "/api/external/webhooks/$hook", Body::Json(r#"{"description":"changed"}"#), S200, ext_extra(N)),
        rest("GET", "/api/external/webhooks/$hook/secret", E, S200, ext_extra(N)),
        rest("POST", "/api/external/webhooks/$hook/rotate-secret", E, S200, ext_extra(N)),
        rest("GET", "/api/external/webhooks/$hook/deliveries", E, S200, ext_extra(N)),
        rest("POST", "/api/external/webhooks/$hook/deliveries/$delivery/retry", E, &[202, 409], ext_extra(N)),
        rest("POST", "/api/external/webhooks/$hook/test", E, S202, ext_extra(N)),
        rest("DELETE", "/api/external/webhooks/$dhook", E, S200, ext_extra(N)),
    ]
}

/// One row per GraphQL root field (queries and mutations).
struct Gql {
    field: &'static str,
    query: &'static str,
    want: [Want; 6],
}

const fn gql(field: &'static str, query: &'static str, want: [Want; 6]) -> Gql {
    Gql { field, query, want }
}

#[rustfmt::skip]
fn gql_rows() -> Vec<Gql> {
    vec![
        gql("register", r#"mutation Register { register(input: {email: "$email", password: "correct-horse-battery", name: "N"}) { accessToken } }"#, PUBLIC),
        gql("login", r#"mutation Login { login(input: {email: "$owner", password: "correct-horse-battery"}) { accessToken } }"#, PUBLIC),
        gql("refreshToken", r#"mutation RefreshToken { refreshToken(refreshToken: "$refresh") { accessToken } }"#, PUBLIC),
        gql("logout", r#"mutation Logout { logout(refreshToken: "$refresh2") }"#, PUBLIC),
        gql("me", "query Me { me { user { id } tenant { id } } }", user_only(Own)),
        gql("apiKeys", "query ApiKeys { apiKeys { id scopes } }", user_only(Own)),
        gql("createApiKey", r#"mutation CreateApiKey { createApiKey(name: "k") { id } }"#, user_only(Own)),
        gql("revokeApiKey", r#"mutation RevokeApiKey { revokeApiKey(id: "$apikey") }"#, user_only(N)),
        gql("sessions", "query Sessions { sessions { data { id } } }", any(Own)),
        gql("session", r#"query Session { session(id: "$conn") { id } }"#, any(N)),
        gql("checkNumber", r#"query CheckNumber { checkNumber(sessionId: "$conn", phone: "+14155550199") { onWhatsApp } }"#, any(N)),
        gql("createSession", r#"mutation CreateSession { createSession(input: {name: "n"}) { id } }"#, any_extra(Own)),
        gql("renameSession", r#"mutation RenameSession { renameSession(id: "$conn", name: "r") { id } }"#, any_extra(N)),
        gql("connectSession", r#"mutation ConnectSession { connectSession(id: "$idle") { status } }"#, any_extra(N)),
        gql("requestPairCode", r#"mutation RequestPairCode { requestPairCode(id: "$idle", phoneNumber: "+14155550188") { code } }"#, any_extra(N)),
        gql("sandboxScan", r#"mutation SandboxScan { sandboxScan(id: "$idle") { status } }"#, any_extra(N)),
        gql("disconnectSession", r#"mutation DisconnectSession { disconnectSession(id: "$idle") { status } }"#, any_extra(N)),
        gql("logoutSession", r#"mutation LogoutSession { logoutSession(id: "$paired") { status } }"#, any_extra(N)),
        gql("deleteSession", r#"mutation DeleteSession { deleteSession(id: "$doomed") }"#, any_extra(N)),
        gql("sendText", r#"mutation SendText { sendText(sessionId: "$conn", to: "+14155550199", text: "hi") { id } }"#, any(N)),
        gql("sendLocation", r#"mutation SendLocation { sendLocation(sessionId: "$conn", to: "+14155550199", latitude: 1.5, longitude: 2.5) { id } }"#, any(N)),
        gql("sendMedia", "", any(N)),
        gql("messages", "query Messages { messages { data { id } } }", any(Own)),
        gql("message", r#"query Message { message(id: "$msg") { id } }"#, any(N)),
        gql("contacts", "query Contacts { contacts { data { id } } }", any(Own)),
        gql("contact", r#"query Contact { contact(id: "$contact") { id } }"#, any(N)),
        gql("contactTags", "query ContactTags { contactTags { tag } }", any(Own)),
        gql("contactGroups", "query ContactGroups { contactGroups { data { id } } }", any(Own)),
        gql("contactGroup", r#"query ContactGroup { contactGroup(id: "$group") { id } }"#, any(N)),
        gql("createContact", r#"mutation CreateContact { createContact(input: {phone: "$newphone"}) { id } }"#, any(Own)),
        gql("updateContact", r#"mutation UpdateContact { updateContact(id: "$contact", input: {name: "C"}) { id } }"#, any(N)),
        gql("importContacts", r#"mutation ImportContacts { importContacts(contacts: [{phone: "$newphone2"}]) { imported } }"#, any(Own)),
        gql("createContactGroup", r#"mutation CreateContactGroup { createContactGroup(name: "$groupname") { id } }"#, any(Own)),
        gql("updateContactGroup", r#"mutation UpdateContactGroup { updateContactGroup(id: "$group", description: "d") { id } }"#, any(N)),
        gql("addContactsToGroup", r#"mutation AddContactsToGroup { addContactsToGroup(groupId: "$group", contactIds: ["$contact"]) { changed } }"#, any(N)),
        gql("removeContactsFromGroup", r#"mutation RemoveContactsFromGroup { removeContactsFromGroup(groupId: "$group", contactIds: ["$contact"]) { changed } }"#, any(N)),
        gql("deleteContactGroup", r#"mutation DeleteContactGroup { deleteContactGroup(id: "$dgroup") }"#, any(N)),
        gql("deleteContact", r#"mutation DeleteContact { deleteContact(id: "$dcontact") }"#, any(N)),
        gql("webhooks", "query Webhooks { webhooks { data { id } } }", any_extra(Own)),
        gql("webhook", r#"query Webhook { webhook(id: "$hook") { id } }"#, any_extra(N)),
        gql("webhookSecret", r#"query WebhookSecret { webhookSecret(id: "$hook") { secret } }"#, any_extra(N)),
        gql("webhookDeliveries", r#"query WebhookDeliveries { webhookDeliveries(webhookId: "$hook") { data { id } } }"#, any_extra(N)),
        gql("createWebhook", r#"mutation CreateWebhook { createWebhook(input: {url: "http://127.0.0.1:9/h", sessionIds: ["$conn"]}) { id } }"#, any_extra(N)),
        gql("updateWebhook", r#"mutation UpdateWebhook { updateWebhook(id: "$hook", input: {description: "x"}) { id } }"#, any_extra(N)),
        gql("rotateWebhookSecret", r#"mutation RotateWebhookSecret { rotateWebhookSecret(id: "$hook") { secret } }"#, any_extra(N)),
        gql("retryWebhookDelivery", r#"mutation RetryWebhookDelivery { retryWebhookDelivery(webhookId: "$hook", deliveryId: "$delivery") { id } }"#, any_extra(N)),
        gql("testWebhook", r#"mutation TestWebhook { testWebhook(id: "$hook") { id } }"#, any_extra(N)),
        gql("deleteWebhook", r#"mutation DeleteWebhook { deleteWebhook(id: "$dhook") }"#, any_extra(N)),
    ]
}

/// The GraphQL multipart upload for `sendMedia`.
async fn gql_send_media(app: &TestApp, auth: Auth<'_>, session: &str) -> Value {
    let ops = json!({
        "query": "mutation SendMedia($f: Upload!) { sendMedia(type: IMAGE, sessionId: \"SESSION\", to: \"+14155550199\", file: $f) { id } }".replace("SESSION", session),
        "variables": {"f": null}
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", ops.to_string())
        .text("map", r#"{"0": ["variables.f"]}"#)
        .part(
            "0",
            reqwest::multipart::Part::bytes(PNG_1X1).file_name("a.png"),
        );
    let mut req = app.client.post(app.url("/graphql")).multipart(form);
    req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Key(k) => req.header("X-API-Key", k),
    };
    let res = req.send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    if status == StatusCode::UNAUTHORIZED {
        // Anonymous uploads are refused before the body is read, as a REST envelope.
        return json!({"errors": [{"extensions": {"code": body["code"]}}]});
    }
    body
}

/// Everything the calls refer to, made fresh in tenant A before each credential's run.
struct Fixture {
    vars: BTreeMap<&'static str, String>,
}

impl Fixture {
    fn fill(&self, template: &str) -> String {
        let mut names: Vec<&&str> = self.vars.keys().collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let mut out = template.to_owned();
        for n in names {
            out = out.replace(&format!("${n}"), &self.vars[*n]);
        }
        assert!(!out.contains('$'), "unfilled placeholder in {out}");
        out
    }

    /// Tenant A's ids, which must never appear in an answer to tenant B or to nobody.
    fn secrets(&self) -> Vec<String> {
        [
            "conn",
            "idle",
            "paired",
            "doomed",
            "msg",
            "media",
            "contact",
            "dcontact",
            "vcontact",
            "vdcontact",
            "group",
            "dgroup",
            "hook",
            "dhook",
            "delivery",
            "apikey",
            "tenant",
        ]
        .iter()
        .map(|k| self.vars[k].clone())
        .collect()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

struct World {
    app: TestApp,
    owner: String,
    token: String,
    key_default: String,
    key_all: String,
    other_token: String,
    other_key: String,
    serial: std::sync::atomic::AtomicU32,
}

impl World {
    async fn new() -> World {
        // Many logins and registrations from one address: lift the auth-attempt limit.
        let app = TestApp::spawn_with(|c| c.auth_rate_limit = 100_000).await;
        let owner = "owner@matrix.test".to_owned();
        let token = app.token(&owner).await;
        let key_default = app.api_key(&token, "default").await;
        let all = json!([
            "manage_sessions",
            "read_sessions",
            "send_messages",
            "read_messages",
            "manage_contacts",
            "manage_webhooks",
            "read_webhook_secrets"
        ]);
        let r = app
            .post(
                "/api/external/api-keys",
                Auth::Bearer(&token),
                json!({"name": "all", "scopes": all}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["data"]["scopes"], all);
        let key_all = r.body["data"]["key"].as_str().unwrap().to_owned();
        let other_token = app.token("other@matrix.test").await;
        let r = app
            .post(
                "/api/external/api-keys",
                Auth::Bearer(&other_token),
                json!({"name": "all", "scopes": all}),
            )
            .await;
        let other_key = r.body["data"]["key"].as_str().unwrap().to_owned();
        World {
            app,
            owner,
            token,
            key_default,
            key_all,
            other_token,
            other_key,
            serial: Default::default(),
        }
    }

    fn auth(&self, c: Cred) -> Auth<'_> {
        match c {
            Cred::User => Auth::Bearer(&self.token),
            Cred::KeyDefault => Auth::Key(&self.key_default),
            Cred::KeyAll => Auth::Key(&self.key_all),
            Cred::OtherUser => Auth::Bearer(&self.other_token),
            Cred::OtherKey => Auth::Key(&self.other_key),
            Cred::Nobody => Auth::None,
        }
    }

    fn next(&self) -> u32 {
        self.serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn id_of(&self, path: &str, body: Value) -> String {
        let r = self.app.post(path, Auth::Bearer(&self.token), body).await;
        assert!(r.status.is_success(), "{path}: {}", r.body);
        r.body["data"]["id"].as_str().unwrap().to_owned()
    }

    async fn refresh_token(&self) -> String {
        let r = self
            .app
            .post(
                "/api/auth/login",
                Auth::None,
                json!({"email": self.owner, "password": "correct-horse-battery"}),
            )
            .await;
        r.body["data"]["refreshToken"].as_str().unwrap().to_owned()
    }

    async fn fixture(&self) -> Fixture {
        let n = self.next();
        let app = &self.app;
        let t = &self.token;
        let phone = |i: u32| format!("+1415555{:04}", 1000 + n * 10 + i);
        let mut v = BTreeMap::new();
        v.insert("conn", app.connected_session(t, &phone(0)).await);
        v.insert("paired", app.connected_session(t, &phone(1)).await);
        v.insert("idle", app.create_session(t, "idle").await);
        v.insert("doomed", app.create_session(t, "doomed").await);
        v.insert(
            "msg",
            app.queue_text(t, &v["conn"], "+14155550199", "fixture")
                .await,
        );
        let r = app
            .post(
                "/api/messages/send-image",
                Auth::Bearer(t),
                json!({"sessionId": v["conn"], "to": "+14155550199", "file": b64(PNG_1X1)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        v.insert("media", r.body["data"]["id"].as_str().unwrap().to_owned());
        for (name, i) in [
            ("contact", 2),
            ("dcontact", 3),
            ("vcontact", 4),
            ("vdcontact", 5),
        ] {
            let id = self
                .id_of("/api/contacts", json!({"phone": phone(i), "name": name}))
                .await;
            v.insert(name, id);
        }
        v.insert(
            "group",
            self.id_of("/api/contacts/groups", json!({"name": format!("g{n}")}))
                .await,
        );
        v.insert(
            "dgroup",
            self.id_of("/api/contacts/groups", json!({"name": format!("dg{n}")}))
                .await,
        );
        let hook = json!({"url": "http://127.0.0.1:9/hook"});
        v.insert("hook", self.id_of("/api/webhooks", hook.clone()).await);
        v.insert("dhook", self.id_of("/api/webhooks", hook).await);
        let r = app
            .post_empty(
                &format!("/api/webhooks/{}/test", v["hook"]),
                Auth::Bearer(t),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        v.insert(
            "delivery",
            r.body["data"]["id"].as_str().unwrap().to_owned(),
        );
        let r = app
            .post(
                "/api/external/api-keys",
                Auth::Bearer(t),
                json!({"name": "doomed"}),
            )
            .await;
        v.insert("apikey", r.body["data"]["id"].as_str().unwrap().to_owned());
        let me = app.get("/api/auth/me", Auth::Bearer(t)).await;
        v.insert(
            "tenant",
            me.body["data"]["tenant"]["id"].as_str().unwrap().to_owned(),
        );
        v.insert("refresh", self.refresh_token().await);
        v.insert("refresh2", self.refresh_token().await);
        v.insert("owner", self.owner.clone());
        v.insert("email", format!("new{n}@matrix.test"));
        v.insert("newphone", phone(6));
        v.insert("newphone2", phone(7));
        v.insert("newphone3", phone(8));
        v.insert("groupname", format!("new group {n}"));
        v.insert("png", b64(PNG_1X1));
        v.insert("doc", b64(b"meeting notes"));
        let mut mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom".to_vec();
        mp4.resize(64, 0);
        v.insert("mp4", b64(&mp4));
        let mut ogg = b"OggS\x00\x02".to_vec();
        ogg.resize(64, 0);
        v.insert("ogg", b64(&ogg));
        Fixture { vars: v }
    }
}

/// Compares one outcome with its expectation; a description of the mismatch, if any.
fn judge(
    want: Want,
    ok_status: &[u16],
    status: u16,
    code: &str,
    text: &str,
    fx: &Fixture,
) -> Option<String> {
    let leaked = || fx.secrets().into_iter().find(|s| text.contains(s.as_str()));
    // The second vendor's API answers `{success:false, error}` without a code.
    let coded = |want: &str| code == want || (code.is_empty() && text.contains(r#""error":"#));
    let res = match want {
        Want::Ok => ok_status.contains(&status),
        Want::Own => ok_status.contains(&status) && leaked().is_none(),
        Want::Forbidden => status == 403 && coded("FORBIDDEN"),
        Want::Unauth => status == 401 && coded("UNAUTHORIZED"),
        Want::NotFound => status == 404 && coded("NOT_FOUND") && leaked().is_none(),
    };
    (!res).then(|| {
        format!(
            "wanted {want:?} (ok {ok_status:?}), got {status} {code} (leak: {:?}): {}",
            leaked(),
            text.chars().take(300).collect::<String>()
        )
    })
}

async fn call_rest(w: &World, c: Cred, row: &Rest, fx: &Fixture) -> (u16, String, String) {
    let path = fx.fill(row.path);
    let method = Method::from_bytes(row.method.as_bytes()).unwrap();
    let mut req = w.app.client.request(method, w.app.url(&path));
    req = match w.auth(c) {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Key(k) => req.header("X-API-Key", k),
    };
    req = match &row.body {
        Body::None => req,
        Body::Json(t) => req
            .header("content-type", "application/json")
            .body(fx.fill(t)),
        Body::Csv(t) => req.header("content-type", "text/csv").body(*t),
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let code = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code, text)
}

#[tokio::test]
async fn every_rest_operation_has_a_row_and_behaves_as_it_says() {
    let w = World::new().await;
    let rows = rest_rows();

    // Coverage: the table and the OpenAPI document name the same operations.
    let spec = wagate::http::openapi();
    let mut documented = BTreeSet::new();
    for (path, item) in &spec.paths.paths {
        let json = serde_json::to_value(item).unwrap();
        for m in ["get", "post", "put", "patch", "delete"] {
            if json.get(m).is_some() {
                documented.insert(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    let normalise = |p: &str| {
        let p = p.split('?').next().unwrap_or(p);
        p.split('/')
            .map(|seg| {
                // `$…` ids, and phone numbers in paths.
                if seg.starts_with('$') || seg.starts_with("contact_$") || seg.starts_with('+') {
                    "{}"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let spec_ops: BTreeSet<String> = documented
        .iter()
        .map(|op| {
            let (m, p) = op.split_once(' ').unwrap();
            let p: Vec<&str> = p
                .split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect();
            format!("{m} {}", p.join("/"))
        })
        .collect();
    let table_ops: BTreeSet<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.method, normalise(r.path)))
        .collect();
    let missing: Vec<_> = spec_ops.difference(&table_ops).collect();
    let stale: Vec<_> = table_ops.difference(&spec_ops).collect();
    assert!(missing.is_empty(), "operations without a row: {missing:?}");
    assert!(
        stale.is_empty(),
        "rows for operations that do not exist: {stale:?}"
    );

    let mut failures = Vec::new();
    for (ci, c) in CREDS.iter().enumerate() {
        let fx = w.fixture().await;
        for row in &rows {
            let (status, code, text) = call_rest(&w, *c, row, &fx).await;
            if let Some(why) = judge(row.want[ci], row.ok, status, &code, &text, &fx) {
                failures.push(format!("{c:?} {} {}: {why}", row.method, row.path));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_graphql_field_has_a_row_and_behaves_as_it_says() {
    let w = World::new().await;
    let rows = gql_rows();

    // Coverage: the table and the schema's query and mutation fields are the same.
    let sdl = wagate::graphql::sdl();
    let mut fields = BTreeSet::new();
    for root in ["type QueryRoot {", "type MutationRoot {"] {
        let start = sdl.find(root).unwrap() + root.len();
        let body = &sdl[start..start + sdl[start..].find("\n}").unwrap()];
        let mut depth = 0i32;
        let mut in_doc = false;
        for line in body.lines() {
            let l = line.trim();
            if l.starts_with("\"\"\"") {
                in_doc = !(in_doc || (l.len() > 3 && l.ends_with("\"\"\"")));
                continue;
            }
            if in_doc || l.is_empty() {
                continue;
            }
            if depth == 0
                && let Some(name) = l.split(['(', ':']).next()
            {
                fields.insert(name.trim().to_owned());
            }
            depth += l.matches('(').count() as i32 - l.matches(')').count() as i32;
        }
    }
    let table: BTreeSet<String> = rows.iter().map(|r| r.field.to_owned()).collect();
    let missing: Vec<_> = fields.difference(&table).collect();
    let stale: Vec<_> = table.difference(&fields).collect();
    assert!(
        missing.is_empty(),
        "GraphQL fields without a row: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rows for fields that do not exist: {stale:?}"
    );

    let mut failures = Vec::new();
    for (ci, c) in CREDS.iter().enumerate() {
        let fx = w.fixture().await;
        for row in &rows {
            let body = if row.field == "sendMedia" {
                gql_send_media(&w.app, w.auth(*c), &fx.vars["conn"]).await
            } else {
                let r = w
                    .app
                    .post("/graphql", w.auth(*c), json!({"query": fx.fill(row.query)}))
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
                r.body
            };
            let code = body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let status = match code.as_str() {
                "" if body["errors"].is_null() => 200,
                "FORBIDDEN" => 403,
                "UNAUTHORIZED" => 401,
                "NOT_FOUND" => 404,
                _ => 500,
            };
            let text = body.to_string();
            if let Some(why) = judge(row.want[ci], &[200], status, &code, &text, &fx) {
                failures.push(format!("{c:?} {}: {why}", row.field));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The error code of a refused subscription: async-graphql sends resolver errors as a `next`
/// whose payload carries `errors` (and `error` for request errors).
fn error_code(msg: &Value) -> String {
    let errors = match msg["type"].as_str() {
        Some("next") => &msg["payload"]["errors"],
        Some("error") => &msg["payload"],
        _ => panic!("not an error: {msg}"),
    };
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {msg}"))
        .to_owned()
}

/// Subscriptions: `sessionStatus` and `sessionQr` need `read_sessions`, `messageEvents`
/// `read_messages`; another tenant's session is NOT_FOUND; an allowed subscription delivers.
#[tokio::test]
async fn subscriptions_follow_the_same_rule() {
    let w = World::new().await;
    let fx = w.fixture().await;
    let conn = fx.vars["conn"].clone();
    let idle = fx.vars["idle"].clone();
    // A key that may send but not read messages.
    let r = w
        .app
        .post(
            "/api/external/api-keys",
            Auth::Bearer(&w.token),
            json!({"name": "sender", "scopes": ["send_messages"]}),
        )
        .await;
    let sender = r.body["data"]["key"].as_str().unwrap().to_owned();
    let connect = |key: &str| {
        let payload = json!({"X-API-Key": key});
        let app = &w.app;
        async move {
            GqlWs::connect(app, "graphql-transport-ws", payload)
                .await
                .expect("ack")
        }
    };

    // Refused: no read_messages; another tenant's session.
    let mut ws = connect(&sender).await;
    ws.subscribe(
        "m",
        "subscription MessageEvents { messageEvents { type } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&ws.next_of("m").await), "FORBIDDEN");
    ws.subscribe(
        "s",
        "subscription SessionStatus($s: ID) { sessionStatus(sessionId: $s) { status } }",
        json!({"s": conn}),
    )
    .await;
    assert_eq!(error_code(&ws.next_of("s").await), "FORBIDDEN");

    let mut other = connect(&w.other_key).await;
    for (id, q) in [
        (
            "a",
            "subscription SessionStatus($s: ID) { sessionStatus(sessionId: $s) { status } }",
        ),
        (
            "b",
            "subscription SessionQr($s: ID!) { sessionQr(sessionId: $s) { code } }",
        ),
        (
            "c",
            "subscription MessageEvents($s: ID) { messageEvents(sessionId: $s) { type } }",
        ),
    ] {
        other.subscribe(id, q, json!({"s": conn})).await;
        let msg = other.next_of(id).await;
        assert_eq!(error_code(&msg), "NOT_FOUND", "{id}");
        assert!(!msg.to_string().contains(&conn), "{msg}");
    }

    // Allowed with the default scopes: each stream delivers.
    let mut ws = connect(&w.key_default).await;
    ws.subscribe(
        "st",
        "subscription SessionStatus($s: ID) { sessionStatus(sessionId: $s) { status } }",
        json!({"s": idle}),
    )
    .await;
    ws.subscribe(
        "qr",
        "subscription SessionQr($s: ID!) { sessionQr(sessionId: $s) { code } }",
        json!({"s": idle}),
    )
    .await;
    ws.subscribe(
        "me",
        "subscription MessageEvents($s: ID) { messageEvents(sessionId: $s) { type } }",
        json!({"s": conn}),
    )
    .await;
    let tenant = fx.vars["tenant"].clone();
    w.app.wait_subscribers(&tenant, 3).await;
    let r = w
        .app
        .post_empty(
            &format!("/api/v1/whatsapp/{idle}/connect"),
            Auth::Bearer(&w.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(ws.next_data("st").await["sessionStatus"]["status"].is_string());
    assert!(ws.next_data("qr").await["sessionQr"]["code"].is_string());
    let r = w
        .app
        .post(
            &format!("/api/v1/whatsapp/{conn}/sandbox/inbound"),
            Auth::Bearer(&w.token),
            json!({"from": "+14155550123", "text": "hello"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        ws.next_data("me").await["messageEvents"]["type"],
        "RECEIVED"
    );
}
