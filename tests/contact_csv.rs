//! CSV import and export: good rows, bad rows with line numbers, duplicates, BOM, `;`,
//! malformed files, and an export that imports into another tenant as the same contacts.

mod common;

use common::{Auth, TestApp};
use reqwest::{
    StatusCode,
    multipart::{Form, Part},
};
use serde_json::{Value, json};

async fn import(app: &TestApp, token: &str, bytes: Vec<u8>) -> common::Resp {
    let form = Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name("contacts.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    app.multipart("/api/contacts/import", Auth::Bearer(token), form)
        .await
}

async fn export(app: &TestApp, token: &str) -> (reqwest::header::HeaderMap, String) {
    let res = app
        .client
        .get(app.url("/api/contacts/export"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers().clone();
    (headers, res.text().await.unwrap())
}

async fn all_contacts(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app
        .get(
            "/api/contacts?limit=100&sortBy=created_at&sortOrder=asc",
            Auth::Bearer(token),
        )
        .await;
    r.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn imports_good_rows_and_reports_bad_ones_by_line() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@csv.test").await;
    app.post(
        "/api/contacts",
        Auth::Bearer(&token),
        json!({"phone": "+14155550100", "name": "Existing"}),
    )
    .await;
    let csv = "phone,name,email,tags,optIn\n\
               919876543210,John Smith,john@example.com,\"vip,lead\",true\n\
               not-a-phone,Bad Phone,,,\n\
               +1 415 555 0100,Already There,,,\n\
               +44 20 7946 0958,Jane,jane@example.com,lead,no\n\
               \n\
               91 98765 43210,Repeat of line 2,,,\n\
               +14155550199,Bad Email,nope,,\n\
               +14155550198,Bad OptIn,,,maybe\n";
    let r = import(&app, &token, csv.as_bytes().to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let d = &r.body["data"];
    assert_eq!(d["imported"], 2, "{}", r.body);
    assert_eq!(d["skipped"], 5);
    let lines: Vec<u64> = d["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 7, 8, 9]);
    assert_eq!(d["errors"][1]["error"], "Contact already exists");
    assert_eq!(d["errors"][2]["error"], "Duplicate of line 2");
    assert!(d["errors"][3]["error"].as_str().unwrap().contains("email"));
    assert_eq!(d["errorsTruncated"], false);

    let all = all_contacts(&app, &token).await;
    assert_eq!(all.len(), 3);
    let john = &all[1];
    assert_eq!(john["phone"], "919876543210");
    assert_eq!(john["name"], "John Smith");
    assert_eq!(john["tags"], json!(["vip", "lead"]));
    assert_eq!(john["optIn"], true);
    assert_eq!(john["source"], "import");
    assert_eq!(all[2]["optIn"], false);
    assert_eq!(all[2]["countryCode"], "GB");
}

#[tokio::test]
async fn accepts_bom_semicolons_and_plain_csv_bodies() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@csv-bom.test").await;
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(
        "Phone;Name;Email\r\n+49 30 901820;Jürgen Müller;j@example.de\r\n+33 1 42 68 53 00;Zoé;\r\n"
            .as_bytes(),
    );
    let r = import(&app, &token, bytes).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["imported"], 2, "{}", r.body);
    let all = all_contacts(&app, &token).await;
    assert_eq!(all[0]["name"], "Jürgen Müller");
    assert_eq!(all[0]["phone"], "4930901820");
    assert_eq!(all[1]["name"], "Zoé");

    // `Content-Type: text/csv` with the file as the whole body works too.
    let res = app.post_csv(&token, "phone\n+14155550100\n").await;
    let r = common::Resp::read(res).await;
    assert_eq!(r.body["data"]["imported"], 1, "{}", r.body);
}

#[tokio::test]
async fn malformed_files_are_rejected_before_anything_is_written() {
    let app = TestApp::spawn().await;
    let token = app.token("owner@csv-bad.test").await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("binary", vec![0x89, b'P', b'N', b'G', 0, 0, 0, 13, 1, 2, 3]),
        (
            "no phone column",
            b"name,email\nJohn,john@example.com\n".to_vec(),
        ),
        (
            "latin-1",
            b"phone,name\n+14155550100,J\xfcrgen M\xfcller\n".to_vec(),
        ),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        let r = import(&app, &token, bytes).await;
        r.assert_error(400, "VALIDATION_ERROR");
        assert!(r.body["errors"]["file"].is_string(), "{what}: {}", r.body);
    }
    assert!(all_contacts(&app, &token).await.is_empty());

    let no_file = app
        .multipart(
            "/api/contacts/import",
            Auth::Bearer(&token),
            Form::new().text("other", "x"),
        )
        .await;
    no_file.assert_error(400, "VALIDATION_ERROR");
    assert!(no_file.body["errors"]["file"].is_string());
    let json_body = app
        .post("/api/contacts/import", Auth::Bearer(&token), json!({}))
        .await;
    json_body.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    let anon = import(&app, "", b"phone\n+14155550100\n".to_vec()).await;
    anon.assert_error(401, "UNAUTHORIZED");
}

#[tokio::test]
async fn export_streams_csv_that_imports_into_another_tenant_unchanged() {
    let app = TestApp::spawn().await;
    let a = app.token("a@csv-export.test").await;
    let b = app.token("b@csv-export.test").await;
    app.post(
        "/api/contacts",
        Auth::Bearer(&a),
        json!({"phone": "+971501234567", "name": "Ahmed, \"the\" Great", "email": "a@example.com",
               "tags": ["vip", "returning"], "labels": ["premium"], "optIn": true,
               "params": {"tier": "gold"}, "source": "organic", "countryCode": "AE"}),
    )
    .await;
    // Enough rows for several export pages.
    let mut csv = String::from("phone,name\n");
    for i in 0..2500 {
        csv.push_str(&format!("+1415555{i:04},Person {i}\n"));
    }
    let r = import(&app, &a, csv.into_bytes()).await;
    assert_eq!(r.body["data"]["imported"], 2500, "{}", r.body);

    let (headers, body) = export(&app, &a).await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("contacts.csv")
    );
    let mut lines = body.lines();
    assert_eq!(
        lines.next().unwrap(),
        "phone,name,email,countryCode,tags,labels,optIn,isBlocked,source,params,createdAt"
    );
    assert_eq!(body.lines().count(), 2502, "header plus every contact");
    assert!(lines.next().unwrap().starts_with(
        "971501234567,\"Ahmed, \"\"the\"\" Great\",a@example.com,AE,\"vip,returning\",premium,true,false,organic,"
    ));

    let r = import(&app, &b, body.into_bytes()).await;
    assert_eq!(r.body["data"]["imported"], 2501, "{}", r.body);
    assert_eq!(r.body["data"]["skipped"], 0);

    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["id", "vendorContactId", "createdAt", "updatedAt"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    for page in 1..=26 {
        let path = format!("/api/contacts?limit=100&page={page}&sortBy=created_at&sortOrder=asc");
        let ra = app.get(&path, Auth::Bearer(&a)).await;
        let rb = app.get(&path, Auth::Bearer(&b)).await;
        let da: Vec<Value> = ra.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(strip)
            .collect();
        let db: Vec<Value> = rb.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(strip)
            .collect();
        assert_eq!(da, db, "page {page}");
    }
    // Each tenant's export holds its own contacts only.
    let (_, again) = export(&app, &b).await;
    assert_eq!(again.lines().count(), 2502);
    let c = app.token("c@csv-export.test").await;
    let (_, empty) = export(&app, &c).await;
    assert_eq!(empty.lines().count(), 1, "header only");
}

/// Cells a spreadsheet would run as formulas are exported with a leading `'`, and importing the
/// export takes it off again: the other tenant gets the very same values.
#[tokio::test]
async fn formula_cells_are_defused_on_export_and_restored_on_import() {
    let app = TestApp::spawn().await;
    let a = app.token("formulas@csv.test").await;
    let names = [
        "=HYPERLINK(\"http://evil.example\",\"click\")",
        "@SUM(1)",
        "+cmd|' /C calc'!A0",
        "-1+1",
        "'=already quoted",
        "O'Brien",
    ];
    for (i, name) in names.iter().enumerate() {
        let r = app
            .post(
                "/api/contacts",
                Auth::Bearer(&a),
                json!({"phone": format!("+1415555{:04}", 2000 + i), "name": name, "tags": ["-neg", "ok"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let (_, csv) = export(&app, &a).await;
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    let cells: Vec<(String, String)> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[1].to_owned(), r[4].to_owned())
        })
        .collect();
    let exported: Vec<&str> = cells.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        exported,
        [
            "'=HYPERLINK(\"http://evil.example\",\"click\")",
            "'@SUM(1)",
            "'+cmd|' /C calc'!A0",
            "'-1+1",
            "''=already quoted",
            "O'Brien",
        ]
    );
    assert!(
        cells.iter().all(|(_, tags)| tags == "'-neg,ok"),
        "{cells:?}"
    );

    let b = app.token("formulas-b@csv.test").await;
    let r = import(&app, &b, csv.into_bytes()).await;
    assert_eq!(r.body["data"]["imported"], 6, "{}", r.body);
    let back: Vec<String> = all_contacts(&app, &b)
        .await
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(back, names);
    let tags = &all_contacts(&app, &b).await[0]["tags"];
    assert_eq!(tags, &json!(["-neg", "ok"]));
}

#[tokio::test]
async fn an_unclosed_quote_and_an_over_long_row_are_row_errors() {
    let app = TestApp::spawn().await;
    let token = app.token("quotes@csv.test").await;
    let long_name = "x".repeat(70 * 1024);
    let csv = format!(
        "phone,name\n\
         +14155550301,First\n\
         +14155550302,{long_name}\n\
         +14155550303,Third\n\
         +14155550304,\"Never closed\n\
         +14155550305,Swallowed\n"
    );
    let r = import(&app, &token, csv.into_bytes()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body["data"];
    assert_eq!(d["imported"], 2, "{d}");
    assert_eq!(d["skipped"], 2, "{d}");
    assert_eq!(d["errors"][0]["line"], 3, "{d}");
    assert!(
        d["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("longer than 64 KiB"),
        "{d}"
    );
    assert_eq!(d["errors"][1]["line"], 5, "{d}");
    assert!(
        d["errors"][1]["error"]
            .as_str()
            .unwrap()
            .contains("never closed"),
        "{d}"
    );
    let names: Vec<Value> = all_contacts(&app, &token)
        .await
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, [json!("First"), json!("Third")]);
}
