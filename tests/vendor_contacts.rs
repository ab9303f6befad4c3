//! The second vendor's contacts API (`/api/whatsapp/contacts`): its documented shapes, its
//! `{success:false, error}` errors, both auth schemes, and one store with `/api/contacts`.

mod common;

use common::{Auth, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BASE: &str = "/api/whatsapp/contacts";

/// Asserts this API's error body.
fn vendor_error(r: &common::Resp, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.body["success"], false, "{}", r.body);
    assert_eq!(r.body["error"], error, "{}", r.body);
    assert!(r.body.get("code").is_none(), "{}", r.body);
}

fn is_millis_timestamp(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 24 && s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    })
}

#[tokio::test]
async fn create_get_patch_delete_as_documented() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@vendor.test").await;

    let r = app
        .post(
            BASE,
            Auth::Bearer(&token),
            json!({
                "userNumber": "+971501234567",
                "userName": "Ahmed Hassan",
                "email": "ahmed@example.com",
                "countryCode": "AE",
                "tags": ["lead", "website"],
                "params": {"source_page": "/pricing", "utm_campaign": "spring_2026"}
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let d = &r.body["data"];
    let id = d["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("contact_"), "{id}");
    uuid::Uuid::parse_str(&id["contact_".len()..]).unwrap();
    let vendor_id = d["vendorContactId"].as_str().unwrap().to_owned();
    assert_eq!(vendor_id.len(), 24);
    assert_eq!(d["name"], "Ahmed Hassan");
    assert_eq!(d["phone"], "+971501234567");
    assert_eq!(d["email"], "ahmed@example.com");
    assert_eq!(d["countryCode"], "AE");
    assert_eq!(d["tags"], json!(["lead", "website"]));
    assert_eq!(
        d["params"],
        json!({"source_page": "/pricing", "utm_campaign": "spring_2026"})
    );
    assert_eq!(d["source"], "api");
    assert_eq!(d["optedIn"], false);
    assert_eq!(d["isBlocked"], false);
    assert!(is_millis_timestamp(&d["createdAt"]), "{}", d["createdAt"]);
    assert!(is_millis_timestamp(&d["updatedAt"]));

    // By id and by vendor contact id.
    for key in [id.as_str(), vendor_id.as_str()] {
        let r = app
            .get(&format!("{BASE}/{key}"), Auth::Bearer(&token))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let g = &r.body["data"];
        assert_eq!(g["id"], id.as_str());
        assert_eq!(g["vendorContactId"], vendor_id.as_str());
        assert_eq!(g["labels"], json!([]));
        assert_eq!(g["conversationCount"], 0);
        assert!(g["lastMessageAt"].is_null());
    }

    let r = app
        .patch(
            &format!("{BASE}/{id}"),
            Auth::Bearer(&token),
            json!({
                "name": "Ahmed Hassan Al-Maktoum",
                "email": "ahmed.new@example.com",
                "tags": ["vip", "returning-customer", "high-value"],
                "params": {"shopify_customer_id": "cust_789012", "loyalty_tier": "platinum"},
                "opted_in": true,
                "optedIn": false,
                "unknown": 1
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let p = &r.body["data"];
    assert_eq!(p["id"], id.as_str());
    assert_eq!(p["name"], "Ahmed Hassan Al-Maktoum");
    assert_eq!(p["phone"], "+971501234567");
    assert_eq!(p["email"], "ahmed.new@example.com");
    assert_eq!(p["country_code"], "AE");
    assert_eq!(
        p["tags"],
        json!(["vip", "returning-customer", "high-value"])
    );
    assert_eq!(
        p["params"],
        json!({"shopify_customer_id": "cust_789012", "loyalty_tier": "platinum"})
    );
    assert_eq!(p["is_blocked"], false);
    assert_eq!(p["opted_in"], true, "snake_case is the documented field");
    assert!(is_millis_timestamp(&p["updated_at"]));

    let r = app
        .patch(
            &format!("{BASE}/{id}"),
            Auth::Bearer(&token),
            json!({"is_blocked": true, "country_code": "ae", "source": "organic"}),
        )
        .await;
    assert_eq!(r.body["data"]["is_blocked"], true, "{}", r.body);
    assert_eq!(r.body["data"]["country_code"], "AE");

    let none = app
        .patch(
            &format!("{BASE}/{id}"),
            Auth::Bearer(&token),
            json!({"optedIn": true, "phone": "+1"}),
        )
        .await;
    vendor_error(&none, 400, "No valid fields to update");

    // The first API sees the same contact.
    let first = app
        .get(
            &format!("/api/contacts/{}", &id["contact_".len()..]),
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(first.body["data"]["phone"], "971501234567");
    assert_eq!(first.body["data"]["isBlocked"], true);
    assert_eq!(first.body["data"]["source"], "organic");

    let del = app
        .delete(&format!("{BASE}/{id}"), Auth::Bearer(&token))
        .await;
    assert_eq!(del.status, StatusCode::OK, "{}", del.body);
    assert_eq!(del.body["success"], true);
    vendor_error(
        &app.get(&format!("{BASE}/{id}"), Auth::Bearer(&token)).await,
        404,
        "Contact not found",
    );
    vendor_error(
        &app.get(&format!("{BASE}/not-an-id"), Auth::Bearer(&token))
            .await,
        404,
        "Contact not found",
    );
}

#[tokio::test]
async fn documented_errors_and_auth() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@vendor-err.test").await;
    let key = app.api_key(&token, "crm").await;

    let r = app
        .post(BASE, Auth::Bearer(&token), json!({"userName": "No number"}))
        .await;
    vendor_error(&r, 400, "Phone number (userNumber) is required");
    assert!(r.body["errors"]["userNumber"].is_string());
    let r = app
        .post(BASE, Auth::Bearer(&token), json!({"userNumber": "12"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["error"].as_str().unwrap().contains("userNumber"));

    // API keys work too; a duplicate is 409 whichever API created the first.
    let first = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"phone": "971501234567"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let dup = app
        .post(
            BASE,
            Auth::Key(&key),
            json!({"userNumber": "+971 50 123 4567"}),
        )
        .await;
    vendor_error(&dup, 409, "Contact with this phone number already exists");
    let made = app
        .post(BASE, Auth::Key(&key), json!({"userNumber": "+14155557890"}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let dup = app
        .post(
            "/api/contacts",
            Auth::Bearer(&token),
            json!({"phone": "14155557890"}),
        )
        .await;
    dup.assert_error(409, "CONFLICT");

    for auth in [Auth::None, Auth::Bearer("nope"), Auth::Key("wg_bad")] {
        vendor_error(&app.get(BASE, auth).await, 401, "Unauthorized");
        vendor_error(
            &app.post(BASE, auth, json!({"userNumber": "+14155550100"}))
                .await,
            401,
            "Unauthorized",
        );
    }
    let malformed = app
        .call(reqwest::Method::POST, BASE, Auth::Key(&key), None)
        .await;
    assert_eq!(malformed.status.as_u16(), 415, "{}", malformed.body);
    assert_eq!(malformed.body["success"], false);
    assert!(malformed.body["error"].is_string());

    // Another tenant's contact does not exist for us.
    let other = app.token("other@vendor-err.test").await;
    let id = made.body["data"]["id"].as_str().unwrap();
    vendor_error(
        &app.get(&format!("{BASE}/{id}"), Auth::Bearer(&other)).await,
        404,
        "Contact not found",
    );
    vendor_error(
        &app.patch(
            &format!("{BASE}/{id}"),
            Auth::Bearer(&other),
            json!({"name": "x"}),
        )
        .await,
        404,
        "Contact not found",
    );
    vendor_error(
        &app.delete(&format!("{BASE}/{id}"), Auth::Bearer(&other))
            .await,
        404,
        "Contact not found",
    );
}

#[tokio::test]
async fn list_pages_sorts_searches_and_caps_the_limit() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@vendor-list.test").await;
    let mut expected = Vec::new();
    for i in 0..25 {
        let phone = format!("+1415555{i:04}");
        let r = app
            .post(
                BASE,
                Auth::Bearer(&token),
                json!({"userNumber": phone, "userName": format!("Name {:02}", 24 - i), "email": format!("p{i}@example.com")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        expected.push(phone);
    }
    let r = app.get(BASE, Auth::Bearer(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(d["total"], 25);
    assert_eq!(d["page"], 1);
    assert_eq!(d["limit"], 20, "default limit");
    assert_eq!(d["hasNext"], true);
    let contacts = d["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 20);
    assert_eq!(contacts[0]["phone"], expected[24].as_str(), "newest first");
    for key in [
        "id",
        "name",
        "phone",
        "email",
        "countryCode",
        "tags",
        "labels",
        "source",
        "optedIn",
        "isBlocked",
        "lastMessageAt",
        "conversationCount",
        "createdAt",
        "updatedAt",
    ] {
        assert!(contacts[0].get(key).is_some(), "{key} missing");
    }
    let r = app
        .get(&format!("{BASE}?page=2"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.body["data"]["contacts"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["data"]["hasNext"], false);

    let r = app
        .get(&format!("{BASE}?limit=500"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["data"]["limit"], 100,
        "capped at the documented maximum"
    );
    assert_eq!(r.body["data"]["contacts"].as_array().unwrap().len(), 25);

    let r = app
        .get(
            &format!("{BASE}?sortBy=name&sortOrder=asc&limit=3"),
            Auth::Bearer(&token),
        )
        .await;
    let names: Vec<&str> = r.body["data"]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name 00", "Name 01", "Name 02"]);

    for (q, want) in [
        ("name%2007", "+14155550017"),
        ("p3%40example", "+14155550003"),
        ("5550012", "+14155550012"),
    ] {
        let r = app
            .get(&format!("{BASE}?search={q}"), Auth::Bearer(&token))
            .await;
        assert_eq!(r.body["data"]["total"], 1, "{q}: {}", r.body);
        assert_eq!(r.body["data"]["contacts"][0]["phone"], want);
    }
    vendor_error(
        &app.get(&format!("{BASE}?sortBy=age"), Auth::Bearer(&token))
            .await,
        400,
        "sortBy must be created_at, name or last_message_at",
    );
    let r = app
        .get(&format!("{BASE}?page=abc"), Auth::Bearer(&token))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["success"], false);
}

#[tokio::test]
async fn bulk_import_reports_partial_failures() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@vendor-bulk.test").await;
    let r = app
        .post(
            &format!("{BASE}/bulk"),
            Auth::Bearer(&token),
            json!({"contacts": [
                {"userNumber": "+971501111111", "userName": "Contact One", "tags": ["imported"]},
                {"userNumber": "+971502222222", "userName": "Contact Two", "tags": ["imported"]},
                {"userNumber": "+971503333333", "userName": "Contact Three", "email": "three@example.com"}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(d["imported"], 3);
    assert_eq!(d["skipped"], 0);
    assert_eq!(d["errors"], json!([]));
    let created = d["contacts"].as_array().unwrap();
    assert_eq!(created.len(), 3);
    assert_eq!(created[1]["phone"], "+971502222222");
    assert_eq!(created[1]["status"], "created");
    assert!(created[1]["id"].as_str().unwrap().starts_with("contact_"));

    let r = app
        .post(
            &format!("{BASE}/bulk"),
            Auth::Bearer(&token),
            json!({"contacts": [
                {"userNumber": "+971504444444"},
                {"userNumber": "+971502222222"},
                {"userName": "no number"},
                {"userNumber": "+971504444444"},
                {"userNumber": "+971505555555", "email": "bad"}
            ]}),
        )
        .await;
    let d = &r.body["data"];
    assert_eq!(d["imported"], 1, "{}", r.body);
    assert_eq!(d["skipped"], 4);
    assert_eq!(
        d["errors"][0],
        json!({"index": 1, "phone": "+971502222222", "error": "Contact already exists"})
    );
    assert_eq!(d["errors"][1]["index"], 2);
    assert_eq!(
        d["errors"][1]["error"],
        "Phone number (userNumber) is required"
    );
    assert_eq!(d["errors"][2]["index"], 3);
    assert_eq!(d["errors"][3]["index"], 4);
    assert_eq!(d["contacts"][0]["phone"], "+971504444444");

    let tags = app.get("/api/contacts/tags", Auth::Bearer(&token)).await;
    assert_eq!(tags.body["data"], json!([{"tag": "imported", "count": 2}]));
    vendor_error(
        &app.post(
            &format!("{BASE}/bulk"),
            Auth::Bearer(&token),
            json!({"contacts": []}),
        )
        .await,
        400,
        "contacts must be a non-empty array",
    );
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"userNumber": format!("+1415555{i:04}")}))
        .collect();
    let r = app
        .post(
            &format!("{BASE}/bulk"),
            Auth::Bearer(&token),
            json!({"contacts": many}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}
