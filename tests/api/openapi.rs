use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_committed_spec_matches_the_served_one() {
    let app = spawn_app().await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value = serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: run `cargo run -- openapi --out openapi/openapi.json`"
    );
}

#[tokio::test]
async fn the_spec_lists_every_route() {
    let spec: Value = serde_json::from_str(&slotsync::api::spec_json()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/auth/users", "post"),
        ("/auth/users", "get"),
        ("/auth/users/me", "get"),
        ("/auth/users/{user_id}", "delete"),
        ("/slots", "post"),
        ("/slots", "get"),
        ("/slots/{id}", "get"),
        ("/slots/{id}", "put"),
        ("/slots/{id}", "delete"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
}

/// The JSON paths of `null`s in `v`.
fn nulls(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Null => out.push(path.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                nulls(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(fields) => {
            for (k, item) in fields {
                nulls(item, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn absent_values_are_omitted_never_sent_as_null() {
    // The spec declares optional fields as not nullable: a strict generated client fails
    // on a `null`. One rule everywhere: an absent value is left out.
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    app.create_slot(
        &user,
        &crate::helpers::slot_body("no description", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
    )
    .await;
    let mut found = Vec::new();
    for path in [
        "/auth/google/connection",
        "/sync/status",
        "/slots",
        "/auth/users/me",
        "/sync/held-deletions",
    ] {
        let body = app.get_json(&user, path).await;
        nulls(&body, path, &mut found);
    }
    let users: Value = app.admin_get("/auth/users").await.json().await.unwrap();
    nulls(&users, "/auth/users", &mut found);
    assert!(found.is_empty(), "nulls in answers: {found:?}");
}
