//! The first contacts API (`/api/contacts`), groups, tags, search and sorting, tenant
//! isolation, GraphQL over the same store, and conversation stats kept from messages.

mod common;

use common::{Auth, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app.post("/api/contacts", Auth::Bearer(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["data"].clone()
}

fn phones(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["phone"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_and_list_have_the_documented_shapes() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@contacts.test").await;

    let r = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"phone": "919876543210", "name": "John Smith", "email": "john@example.com", "optIn": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let c = &r.body["data"];
    uuid::Uuid::parse_str(c["id"].as_str().unwrap()).unwrap();
    assert_eq!(c["phone"], "919876543210");
    assert_eq!(c["phoneE164"], "+919876543210");
    assert_eq!(c["name"], "John Smith");
    assert_eq!(c["email"], "john@example.com");
    assert_eq!(c["optIn"], true);
    assert_eq!(c["countryCode"], "IN", "derived from the number");
    assert_eq!(c["source"], "api");
    assert_eq!(c["conversationCount"], 0);
    assert!(c["lastMessageAt"].is_null());
    let vendor_id = c["vendorContactId"].as_str().unwrap();
    assert_eq!(vendor_id.len(), 24);
    assert!(vendor_id.bytes().all(|b| b.is_ascii_hexdigit()));

    // A formatted number is the same contact: 409 with the documented envelope.
    let dup = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"phone": "+91 98765 43210", "name": "Again"}),
        )
        .await;
    dup.assert_error(409, "CONFLICT");
    assert_eq!(
        dup.body["message"],
        "Contact with this phone number already exists"
    );

    for i in 0..3 {
        create(
            &app,
            &token,
            json!({"phone": format!("+1415555010{i}"), "name": format!("Person {i}")}),
        )
        .await;
    }
    let r = app
        .get("/api/contacts?page=1&limit=2", Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let pg = &r.body["pagination"];
    assert_eq!(
        (&pg["page"], &pg["limit"], &pg["total"], &pg["totalPages"]),
        (&json!(1), &json!(2), &json!(4), &json!(2))
    );
    assert!(pg["nextCursor"].is_string(), "a full page offers a cursor");
    let first = &r.body["data"][0];
    for key in ["id", "phone", "name", "optIn"] {
        assert!(first.get(key).is_some(), "{key} missing: {first}");
    }
    assert_eq!(
        phones(&r.body),
        ["14155550102", "14155550101"],
        "newest first"
    );
    let r2 = app
        .get("/api/contacts?page=2&limit=2", Auth::Bearer(&token))
        .await;
    assert_eq!(phones(&r2.body), ["14155550100", "919876543210"]);

    // Limit above the maximum, and bad sort values, are 400 with per-field errors.
    app.get("/api/contacts?limit=101", Auth::Bearer(&token))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let bad = app
        .get(
            "/api/contacts?sortBy=age&sortOrder=up",
            Auth::Bearer(&token),
        )
        .await;
    bad.assert_error(400, "VALIDATION_ERROR");
    assert!(bad.body["errors"]["sortBy"].is_string());
    assert!(bad.body["errors"]["sortOrder"].is_string());
}

#[tokio::test]
async fn validation_reports_every_field() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@valid.test").await;
    let r = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"phone": "abc", "email": "not-an-email", "countryCode": "India", "params": [1], "tags": ["x".repeat(65)]}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    let e = &r.body["errors"];
    for field in ["phone", "email", "countryCode", "params", "tags"] {
        assert!(e[field].is_string(), "{field}: {}", r.body);
    }
    let r = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"name": "No phone"}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(r.body["errors"]["phone"], "Valid phone number is required");
    // Wrong JSON types name the field.
    let r = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"phone": "+14155550100", "optIn": "yes"}),
        )
        .await;
    r.assert_error(400, "VALIDATION_ERROR");
    assert!(r.body["errors"]["optIn"].is_string(), "{}", r.body);
    // Nothing was stored.
    let list = app.get("/api/contacts", Auth::Bearer(&token)).await;
    assert_eq!(list.body["pagination"]["total"], 0);
}

#[tokio::test]
async fn get_patch_delete_and_tenant_isolation() {
    let app = TestApp::spawn().await;
    let a = app.token("a@iso.test").await;
    let b = app.token("b@iso.test").await;
    let c = create(
        &app,
        &a,
        json!({"phone": "+971501234567", "name": "Ahmed", "tags": ["vip"], "params": {"tier": "gold"}}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let path = format!("/api/contacts/{id}");

    let got = app.get(&path, Auth::Bearer(&a)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["data"]["countryCode"], "AE");
    assert_eq!(got.body["data"]["params"], json!({"tier": "gold"}));

    // Tenant B sees nothing of A's, on every route.
    app.get(&path, Auth::Bearer(&b))
        .await
        .assert_error(404, "NOT_FOUND");
    app.patch(&path, Auth::Bearer(&b), json!({"name": "Hijack"}))
        .await
        .assert_error(404, "NOT_FOUND");
    app.delete(&path, Auth::Bearer(&b))
        .await
        .assert_error(404, "NOT_FOUND");
    let list_b = app.get("/api/contacts", Auth::Bearer(&b)).await;
    assert_eq!(list_b.body["pagination"]["total"], 0);
    let tags_b = app.get("/api/contacts/tags", Auth::Bearer(&b)).await;
    assert_eq!(tags_b.body["data"], json!([]));
    // B may hold the same number: uniqueness is per tenant.
    create(&app, &b, json!({"phone": "+971501234567"})).await;

    let r = app
        .patch(
            &path,
            Auth::Bearer(&a),
            json!({"name": "Ahmed Hassan", "email": null, "tags": ["vip", "returning"], "optIn": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(d["name"], "Ahmed Hassan");
    assert!(d["email"].is_null());
    assert_eq!(d["tags"], json!(["vip", "returning"]));
    assert_eq!(d["optIn"], true);
    assert_eq!(d["params"], json!({"tier": "gold"}), "absent fields stay");

    app.patch(&path, Auth::Bearer(&a), json!({}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    app.patch(&path, Auth::Bearer(&a), json!({"phone": "nope"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let other = create(&app, &a, json!({"phone": "+14155550100"})).await;
    app.patch(
        &format!("/api/contacts/{}", other["id"].as_str().unwrap()),
        Auth::Bearer(&a),
        json!({"phone": "+971 50 123 4567"}),
    )
    .await
    .assert_error(409, "CONFLICT");

    let del = app.delete(&path, Auth::Bearer(&a)).await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(del.body["success"], true);
    app.get(&path, Auth::Bearer(&a))
        .await
        .assert_error(404, "NOT_FOUND");
    // B's copy is untouched.
    let list_b = app.get("/api/contacts", Auth::Bearer(&b)).await;
    assert_eq!(list_b.body["pagination"]["total"], 1);
    app.get("/api/contacts", Auth::None)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn search_filters_and_sorting() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@search.test").await;
    let rows = [
        (
            "+14155550100",
            "Alice Walker",
            "alice@alpha.io",
            vec!["vip"],
        ),
        ("+14155550101", "Bob Stone", "bob@beta.io", vec!["lead"]),
        (
            "+919876543210",
            "Chandra Rao",
            "chandra@gamma.in",
            vec!["vip", "india"],
        ),
        ("+971501234567", "Dana Ahmed", "dana@delta.ae", vec![]),
    ];
    let mut ids = Vec::new();
    for (phone, name, email, tags) in rows {
        let c = create(
            &app,
            &token,
            json!({"phone": phone, "name": name, "email": email, "tags": tags}),
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let search = |q: &str| {
        let app = &app;
        let token = token.clone();
        let q = q.to_owned();
        async move {
            let r = app
                .get(
                    &format!("/api/contacts?search={}", urlencode(&q)),
                    Auth::Bearer(&token),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let mut p = phones(&r.body);
            p.sort();
            p
        }
    };
    assert_eq!(search("walk").await, ["14155550100"], "name substring");
    assert_eq!(search("ALICE").await, ["14155550100"], "any case");
    assert_eq!(search("beta.io").await, ["14155550101"], "email");
    assert_eq!(search("98765").await, ["919876543210"], "phone digits");
    assert_eq!(
        search("+91 98765").await,
        ["919876543210"],
        "formatted phone input"
    );
    assert_eq!(search("ra").await, ["919876543210"], "two characters scan");
    assert_eq!(search("zzz").await, Vec::<String>::new());
    assert_eq!(search("\"quoted\"").await, Vec::<String>::new());

    let r = app
        .get(
            "/api/contacts?tag=vip&sortBy=name&sortOrder=asc",
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(phones(&r.body), ["14155550100", "919876543210"]);
    let r = app
        .get(
            "/api/contacts?sortBy=name&sortOrder=desc",
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(
        phones(&r.body),
        ["971501234567", "919876543210", "14155550101", "14155550100"]
    );
    let r = app
        .get(
            "/api/contacts?sortBy=created_at&sortOrder=asc",
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(
        phones(&r.body),
        ["14155550100", "14155550101", "919876543210", "971501234567"]
    );

    let tags = app.get("/api/contacts/tags", Auth::Bearer(&token)).await;
    assert_eq!(
        tags.body["data"],
        json!([{"tag": "vip", "count": 2}, {"tag": "india", "count": 1}, {"tag": "lead", "count": 1}])
    );

    // The API-key family lists the same store.
    let key = app.api_key(&token, "crm").await;
    let ext = app
        .get("/api/external/contacts?search=dana", Auth::Key(&key))
        .await;
    assert_eq!(ext.status, StatusCode::OK, "{}", ext.body);
    assert_eq!(ext.body["data"][0]["phone"], "971501234567");
    assert!(ext.body["data"][0]["id"].is_string());
    app.get("/api/external/contacts", Auth::Bearer(&token))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn groups_and_membership() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@groups.test").await;
    let other = app.token("other@groups.test").await;
    let c1 = create(&app, &token, json!({"phone": "+14155550100"})).await;
    let c2 = create(&app, &token, json!({"phone": "+14155550101"})).await;
    let foreign = create(&app, &other, json!({"phone": "+14155550102"})).await;

    let g = app
        .post(
            "/api/contacts/groups",
            Auth::Bearer(&token),
            json!({"name": "Customers", "description": "Paying"}),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    assert_eq!(g.body["data"]["memberCount"], 0);
    let gid = g.body["data"]["id"].as_str().unwrap().to_owned();
    app.post(
        "/api/contacts/groups",
        Auth::Bearer(&token),
        json!({"name": "Customers"}),
    )
    .await
    .assert_error(409, "CONFLICT");
    app.post("/api/contacts/groups", Auth::Bearer(&token), json!({}))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    let members = format!("/api/contacts/groups/{gid}/members");
    let r = app
        .post(
            &members,
            Auth::Bearer(&token),
            json!({"contactIds": [c1["id"], c2["id"]]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"], json!({"changed": 2, "memberCount": 2}));
    // Adding again changes nothing; another tenant's contact is not found.
    let r = app
        .post(
            &members,
            Auth::Bearer(&token),
            json!({"contactIds": [c1["id"]]}),
        )
        .await;
    assert_eq!(r.body["data"], json!({"changed": 0, "memberCount": 2}));
    app.post(
        &members,
        Auth::Bearer(&token),
        json!({"contactIds": [foreign["id"]]}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    app.post(&members, Auth::Bearer(&token), json!({"contactIds": []}))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    let r = app
        .get(
            &format!("/api/contacts?groupId={gid}"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.body["pagination"]["total"], 2);

    let r = app
        .call(
            reqwest::Method::DELETE,
            &members,
            Auth::Bearer(&token),
            Some(json!({"contactIds": [c1["id"]]})),
        )
        .await;
    assert_eq!(r.body["data"], json!({"changed": 1, "memberCount": 1}));
    let r = app
        .get(
            &format!("/api/contacts?groupId={gid}"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(phones(&r.body), ["14155550101"]);

    let path = format!("/api/contacts/groups/{gid}");
    let r = app
        .patch(
            &path,
            Auth::Bearer(&token),
            json!({"name": "VIP", "description": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["name"], "VIP");
    assert!(r.body["data"]["description"].is_null());
    assert_eq!(r.body["data"]["memberCount"], 1);
    let list = app.get("/api/contacts/groups", Auth::Bearer(&token)).await;
    assert_eq!(list.body["pagination"]["total"], 1);
    assert_eq!(list.body["data"][0]["name"], "VIP");

    // Another tenant cannot see or touch the group.
    app.get(&path, Auth::Bearer(&other))
        .await
        .assert_error(404, "NOT_FOUND");
    app.post(
        &members,
        Auth::Bearer(&other),
        json!({"contactIds": [foreign["id"]]}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let list = app.get("/api/contacts/groups", Auth::Bearer(&other)).await;
    assert_eq!(list.body["pagination"]["total"], 0);

    app.delete(&path, Auth::Bearer(&token)).await;
    app.get(&path, Auth::Bearer(&token))
        .await
        .assert_error(404, "NOT_FOUND");
    // Its contacts stay.
    let all = app.get("/api/contacts", Auth::Bearer(&token)).await;
    assert_eq!(all.body["pagination"]["total"], 2);
}

#[tokio::test]
async fn graphql_shares_the_store() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@gql-contacts.test").await;
    let rest = create(
        &app,
        &token,
        json!({"phone": "+14155550100", "name": "Rest Made", "tags": ["a"]}),
    )
    .await;

    let created = app
        .graphql(
            Auth::Bearer(&token),
            "mutation CreateContact($i: ContactCreateInput!) { createContact(input: $i) { id phone phoneE164 name tags countryCode } }",
            json!({"i": {"phone": "+44 20 7946 0958", "name": "Graph Made", "tags": ["b"]}}),
        )
        .await;
    let c = &created["data"]["createContact"];
    assert_eq!(c["phone"], "442079460958", "{created}");
    assert_eq!(c["countryCode"], "GB");

    let dup = app
        .graphql(
            Auth::Bearer(&token),
            "mutation CreateContact { createContact(input: {phone: \"14155550100\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(dup["errors"][0]["extensions"]["code"], "CONFLICT", "{dup}");

    let list = app
        .graphql(
            Auth::Bearer(&token),
            "query Contacts { contacts(filter: {search: \"made\"}, sortBy: NAME, sortOrder: ASC) { data { name } pagination { total } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["data"]["contacts"],
        json!({"data": [{"name": "Graph Made"}, {"name": "Rest Made"}], "pagination": {"total": 2}})
    );

    // Seen over REST, changed over GraphQL.
    let rid = rest["id"].as_str().unwrap();
    let upd = app
        .graphql(
            Auth::Bearer(&token),
            "mutation UpdateContact($id: ID!) { updateContact(id: $id, input: {name: null, tags: [\"x\"]}) { name tags } }",
            json!({"id": rid}),
        )
        .await;
    assert_eq!(
        upd["data"]["updateContact"],
        json!({"name": null, "tags": ["x"]})
    );
    let got = app
        .get(&format!("/api/contacts/{rid}"), Auth::Bearer(&token))
        .await;
    assert!(got.body["data"]["name"].is_null());

    let bulk = app
        .graphql(
            Auth::Bearer(&token),
            "mutation ImportContacts { importContacts(contacts: [{phone: \"+14155550111\"}, {phone: \"bad\"}, {phone: \"+14155550100\"}]) { imported skipped errors { index error } contacts { phone status } } }",
            json!({}),
        )
        .await;
    let b = &bulk["data"]["importContacts"];
    assert_eq!(b["imported"], 1, "{bulk}");
    assert_eq!(b["skipped"], 2);
    assert_eq!(b["errors"][0]["index"], 1);
    assert_eq!(b["errors"][1]["error"], "Contact already exists");

    let grp = app
        .graphql(
            Auth::Bearer(&token),
            "mutation CreateContactGroup { createContactGroup(name: \"G\") { id memberCount } }",
            json!({}),
        )
        .await;
    let gid = grp["data"]["createContactGroup"]["id"].as_str().unwrap();
    let add = app
        .graphql(
            Auth::Bearer(&token),
            "mutation AddContactsToGroup($g: ID!, $c: [ID!]!) { addContactsToGroup(groupId: $g, contactIds: $c) { changed memberCount } }",
            json!({"g": gid, "c": [rid]}),
        )
        .await;
    assert_eq!(
        add["data"]["addContactsToGroup"],
        json!({"changed": 1, "memberCount": 1})
    );
    let tags = app
        .graphql(
            Auth::Bearer(&token),
            "query ContactTags { contactTags { tag count } }",
            json!({}),
        )
        .await;
    assert_eq!(
        tags["data"]["contactTags"],
        json!([{"tag": "b", "count": 1}, {"tag": "x", "count": 1}])
    );
    let del = app
        .graphql(
            Auth::Bearer(&token),
            "mutation DeleteContact($id: ID!) { deleteContact(id: $id) }",
            json!({"id": format!("contact_{rid}")}),
        )
        .await;
    assert_eq!(del["data"]["deleteContact"], true);
    let other = app.token("other@gql-contacts.test").await;
    let hidden = app
        .graphql(
            Auth::Bearer(&other),
            "query Contact($id: ID!) { contact(id: $id) { id } }",
            json!({"id": c["id"]}),
        )
        .await;
    assert_eq!(hidden["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn messages_keep_conversation_stats_current() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@conv.test").await;
    let session = app.connected_session(&token, "+14155550199").await;
    let c = create(
        &app,
        &token,
        json!({"phone": "+919876543210", "name": "Conv"}),
    )
    .await;
    let path = format!("/api/contacts/{}", c["id"].as_str().unwrap());

    let id = app
        .queue_text(&token, &session, "919876543210", "hello")
        .await;
    app.wait_message(&token, &id, "sent", |d| d["sentAt"].is_string())
        .await;
    let got = app.get(&path, Auth::Bearer(&token)).await;
    assert_eq!(got.body["data"]["conversationCount"], 1, "{}", got.body);
    assert!(got.body["data"]["lastMessageAt"].is_string());

    // A reply within the day is the same conversation.
    let r = app
        .post(
            &format!("/api/v1/whatsapp/{session}/sandbox/inbound"),
            Auth::Bearer(&token),
            json!({"from": "+919876543210", "text": "hi back"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = app.get(&path, Auth::Bearer(&token)).await;
    assert_eq!(got.body["data"]["conversationCount"], 1);

    // Sorting by last message puts contacts without messages last.
    create(
        &app,
        &token,
        json!({"phone": "+14155550100", "name": "Silent"}),
    )
    .await;
    let r = app
        .get("/api/contacts?sortBy=last_message_at", Auth::Bearer(&token))
        .await;
    assert_eq!(phones(&r.body), ["919876543210", "14155550100"]);
}

#[tokio::test]
async fn filters_agree_whichever_index_drives_the_page() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@drive.test").await;
    // 45 contacts: "common" on 40 (walked on the sort index), "rare" on 2 (read from the tag
    // index), names "Member NN".
    let rows: Vec<Value> = (0..45)
        .map(|i| {
            let mut tags = vec![];
            if i < 40 {
                tags.push("common");
            }
            if i == 3 || i == 23 {
                tags.push("rare");
            }
            json!({"userNumber": format!("+1415555{i:04}"), "userName": format!("Member {i:02}"), "tags": tags})
        })
        .collect();
    let r = app
        .post(
            "/api/whatsapp/contacts/bulk",
            Auth::Bearer(&token),
            json!({"contacts": rows}),
        )
        .await;
    assert_eq!(r.body["data"]["imported"], 45, "{}", r.body);
    let ids: Vec<String> = r.body["data"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap()["contact_".len()..].to_owned())
        .collect();
    let g = app
        .post(
            "/api/contacts/groups",
            Auth::Bearer(&token),
            json!({"name": "Two"}),
        )
        .await;
    let gid = g.body["data"]["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/contacts/groups/{gid}/members"),
        Auth::Bearer(&token),
        json!({"contactIds": [ids[3], ids[41]]}),
    )
    .await;

    let list = |q: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let r = app
                .get(&format!("/api/contacts?{q}"), Auth::Bearer(&token))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            let names: Vec<String> = r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect();
            (r.body["pagination"]["total"].as_u64().unwrap(), names)
        }
    };
    assert_eq!(list("limit=1".into()).await.0, 45);
    let (total, names) = list("tag=rare&sortBy=name&sortOrder=asc".into()).await;
    assert_eq!(
        (total, names),
        (2, vec!["Member 03".into(), "Member 23".into()])
    );
    let (total, names) = list("tag=common&sortBy=name&sortOrder=desc&limit=3&page=2".into()).await;
    assert_eq!(total, 40);
    assert_eq!(names, ["Member 36", "Member 35", "Member 34"]);
    let (total, names) = list(format!("groupId={gid}&sortBy=name&sortOrder=asc")).await;
    assert_eq!(
        (total, names),
        (2, vec!["Member 03".into(), "Member 41".into()])
    );
    let (total, names) = list(format!("groupId={gid}&tag=common")).await;
    assert_eq!((total, names), (1, vec!["Member 03".into()]));
    // Search with a filter, and a page past the end still reports the total.
    let (total, names) = list("search=member%202&tag=rare".into()).await;
    assert_eq!((total, names), (1, vec!["Member 23".into()]));
    let (total, names) = list("search=member&limit=20&page=5".into()).await;
    assert_eq!((total, names.len()), (45, 0));
    let (total, names) = list("search=member%204&sortBy=name&sortOrder=asc".into()).await;
    assert_eq!(total, 5, "Member 40 to 44");
    assert_eq!(names[0], "Member 40");

    // The counter follows deletes and imports.
    app.delete(&format!("/api/contacts/{}", ids[0]), Auth::Bearer(&token))
        .await;
    assert_eq!(list("limit=1".into()).await.0, 44);
    assert_eq!(list("tag=common".into()).await.0, 39);
}

/// Follows `nextCursor` from `first` to the end; returns the phones seen.
async fn walk(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut path = format!("/api/contacts?{query}");
    loop {
        let r = app.get(&path, Auth::Bearer(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        seen.extend(phones(&r.body));
        match r.body["pagination"]["nextCursor"].as_str() {
            Some(c) => path = format!("/api/contacts?{query}&cursor={c}"),
            None => return seen,
        }
        // Contacts arriving mid-walk must not shift what is left of it.
        static LATE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = LATE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        create(
            app,
            token,
            json!({"phone": format!("+1212555{n:04}"), "name": format!("Zz late {n}")}),
        )
        .await;
    }
}

#[tokio::test]
async fn cursor_pages_are_stable_while_contacts_arrive() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@cursor.test").await;
    let names = ["Cleo", "Abe", "", "Bea", "Abe"];
    let mut made = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut body = json!({"phone": format!("+1415555{i:04}")});
        if !name.is_empty() {
            body["name"] = json!(name);
        }
        made.push(
            create(&app, &token, body).await["phone"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Newest first: the late arrivals land before the cursor and are not seen.
    let newest: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(walk(&app, &token, "limit=2").await, newest);
    // By name, contacts without one last, ties by id; the late "Zz" names sort after the
    // cursor, so only the originals are compared.
    let by_name = walk(&app, &token, "limit=2&sortBy=name&sortOrder=asc").await;
    let originals: Vec<&String> = by_name.iter().filter(|p| made.contains(p)).collect();
    assert_eq!(
        originals,
        [&made[1], &made[4], &made[3], &made[0], &made[2]],
        "Abe, Abe, Bea, Cleo, then the unnamed one"
    );
    let mut unique = by_name.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), by_name.len(), "no contact twice");

    let first = app
        .get("/api/contacts?limit=2&sortBy=name", Auth::Bearer(&token))
        .await;
    let cursor = first.body["pagination"]["nextCursor"].as_str().unwrap();
    let other = app
        .get(
            &format!("/api/contacts?limit=2&cursor={cursor}"),
            Auth::Bearer(&token),
        )
        .await;
    other.assert_error(400, "VALIDATION_ERROR");
    assert!(other.body["errors"]["cursor"].is_string());
    app.get("/api/contacts?cursor=garbage", Auth::Bearer(&token))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    // The second vendor's list carries the cursor too.
    let v = app
        .get("/api/whatsapp/contacts?limit=3", Auth::Bearer(&token))
        .await;
    let c = v.body["data"]["nextCursor"].as_str().unwrap();
    assert_eq!(v.body["data"]["hasNext"], true);
    let v2 = app
        .get(
            &format!("/api/whatsapp/contacts?limit=3&cursor={c}"),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(v2.status, StatusCode::OK, "{}", v2.body);
    let before: Vec<&Value> = v.body["data"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let after: Vec<&Value> = v2.body["data"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(
        before
            .iter()
            .all(|b| after.iter().all(|a| a["id"] != b["id"]))
    );
}

#[tokio::test]
async fn odd_input_is_a_4xx_never_a_500() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@odd.test").await;
    let odd = create(
        &app,
        &token,
        json!({"phone": "+14155550100", "name": "Odd"}),
    )
    .await;
    for q in [
        "search=%00%00%00",
        "search=%22%22%22%22",
        "search=*%20OR%20NEAR(a%20b)",
        "search=%E2%80%AE%F0%9F%98%80%F0%9F%98%80",
        "search=a%25_%5C",
        "tag=%00",
        "groupId=not-a-uuid",
        "cursor=eyJzIjoxfQ",
        "page=-1",
        "limit=abc",
    ] {
        let r = app
            .get(&format!("/api/contacts?{q}"), Auth::Bearer(&token))
            .await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "{q}: {} {}",
            r.status,
            r.body
        );
        let v = app
            .get(&format!("/api/whatsapp/contacts?{q}"), Auth::Bearer(&token))
            .await;
        assert!(
            v.status == StatusCode::OK || v.status == StatusCode::BAD_REQUEST,
            "{q}: {} {}",
            v.status,
            v.body
        );
        assert!(v.body["success"].is_boolean());
    }
    let s = app
        .get(
            &format!("/api/contacts?search={}", "x".repeat(201)),
            Auth::Bearer(&token),
        )
        .await;
    s.assert_error(400, "VALIDATION_ERROR");
    for body in [
        json!({"tags": "vip"}),
        json!({"params": "x"}),
        json!({"is_blocked": "yes"}),
        json!({"name": 5}),
    ] {
        let r = app
            .patch(
                &format!("/api/whatsapp/contacts/{}", odd["id"].as_str().unwrap()),
                Auth::Bearer(&token),
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.body["success"], false);
        assert!(r.body["error"].is_string());
    }
    let gql = app
        .graphql(
            Auth::Bearer(&token),
            "mutation CreateContact { createContact(input: {phone: \"+14155550101\", params: [1, 2]}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        gql["errors"][0]["extensions"]["code"], "VALIDATION_ERROR",
        "{gql}"
    );
    let bad_id = app
        .get("/api/contacts/not-a-uuid", Auth::Bearer(&token))
        .await;
    bad_id.assert_error(400, "VALIDATION_ERROR");
}
