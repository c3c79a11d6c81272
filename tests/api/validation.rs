//! Bad input gets a 400 with `{code, message, field}` and changes nothing.

use serde_json::{json, Value};

use crate::helpers::{assert_error, slot_body, spawn_app};

/// (what, body as raw text, expected field or None for body-level errors)
fn bad_slot_bodies() -> Vec<(&'static str, String, Option<&'static str>)> {
    let ok = |patch: Value| {
        let mut v = slot_body("t", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = val.clone();
            }
        }
        v.to_string()
    };
    vec![
        ("empty title", ok(json!({"title": ""})), Some("title")),
        ("blank title", ok(json!({"title": "   "})), Some("title")),
        ("missing title", ok(json!({"title": null})), Some("title")),
        ("title too long", ok(json!({"title": "x".repeat(1025)})), Some("title")),
        (
            "description too long",
            ok(json!({"description": "x".repeat(8193)})),
            Some("description"),
        ),
        ("empty description", ok(json!({"description": ""})), Some("description")),
        (
            "location too long",
            ok(json!({"location": "x".repeat(1025)})),
            Some("location"),
        ),
        (
            "end equals start",
            ok(json!({"end": "2026-12-01T09:00:00Z"})),
            Some("end"),
        ),
        (
            "end before start",
            ok(json!({"end": "2026-12-01T08:00:00Z"})),
            Some("end"),
        ),
        (
            "longer than 31 days",
            ok(json!({"end": "2027-01-01T09:00:01Z"})),
            Some("end"),
        ),
        (
            "unknown zone",
            ok(json!({"timezone": "Mars/Olympus_Mons"})),
            Some("timezone"),
        ),
        ("missing start", ok(json!({"start": null})), Some("start")),
        (
            "start without offset",
            ok(json!({"start": "2026-12-01T09:00:00"})),
            Some("start"),
        ),
        ("start not a date", ok(json!({"start": "tomorrow"})), Some("start")),
        ("title of the wrong type", ok(json!({"title": 42})), Some("title")),
        ("unknown field", ok(json!({"colour": "red"})), Some("colour")),
        (
            "all-day without dates",
            json!({"title": "t", "all_day": true}).to_string(),
            Some("start_date"),
        ),
        (
            "all-day without end date",
            json!({"title": "t", "all_day": true, "start_date": "2026-12-01"}).to_string(),
            Some("end_date"),
        ),
        (
            "all-day with a bad date",
            json!({"title": "t", "all_day": true, "start_date": "2026-13-01", "end_date": "2026-12-02"}).to_string(),
            Some("start_date"),
        ),
        (
            "all-day ending before it starts",
            json!({"title": "t", "all_day": true, "start_date": "2026-12-02", "end_date": "2026-12-02"}).to_string(),
            Some("end_date"),
        ),
        ("malformed JSON", "{\"title\": ".to_owned(), None),
        ("not an object", "[1,2,3]".to_owned(), None),
        ("empty body", String::new(), None),
    ]
}

async fn assert_bad(resp: reqwest::Response, what: &str, field: Option<&str>) {
    assert_eq!(resp.status(), 400, "{what}");
    let body: Value = resp.json().await.unwrap();
    assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    if let Some(f) = field {
        assert_eq!(body["field"], f, "{what}: {body}");
    }
}

#[tokio::test]
async fn bad_slot_bodies_are_rejected_on_create_and_nothing_is_written() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let cases = bad_slot_bodies();
    assert!(cases.len() >= 15);
    for (what, body, field) in cases {
        let resp = app
            .client
            .post(app.url("/slots"))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_bad(resp, what, field).await;
    }
    assert!(app.list_slot_ids(&user, "include_deleted=true").await.is_empty());
}

#[tokio::test]
async fn bad_slot_bodies_are_rejected_on_update_and_the_slot_is_unchanged() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let slot = app
        .create_slot(
            &user,
            &slot_body("keep", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap();
    for (what, body, field) in bad_slot_bodies() {
        let resp = app
            .client
            .put(app.url(&format!("/slots/{id}")))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_bad(resp, what, field).await;
    }
    let now: Value = app.get_json(&user, &format!("/slots/{id}")).await;
    assert_eq!(now, slot);
}

#[tokio::test]
async fn bad_parameters_and_headers_name_their_field() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let slot = app
        .create_slot(
            &user,
            &slot_body("keep", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap();

    for (path, field) in [
        ("/slots/not-a-uuid", "id"),
        ("/slots?limit=0", "limit"),
        ("/slots?limit=501", "limit"),
        ("/slots?limit=many", "limit"),
        ("/slots?from=yesterday", "from"),
        ("/slots?to=2026-12-01", "to"),
        ("/slots?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "to"),
        ("/slots?include_deleted=perhaps", "include_deleted"),
        ("/slots?cursor=%21%21", "cursor"),
    ] {
        assert_bad(app.get(&user, path).await, path, Some(field)).await;
    }

    let resp = app
        .put_slot(
            &user,
            id,
            &slot_body("x", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            Some("latest"),
        )
        .await;
    assert_bad(resp, "non-numeric If-Match", Some("If-Match")).await;

    let resp = app
        .client
        .post(app.url("/slots"))
        .bearer_auth(&user.token)
        .header("Idempotency-Key", "x".repeat(300))
        .json(&slot_body("x", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_bad(resp, "over-long Idempotency-Key", Some("Idempotency-Key")).await;

    let resp = app
        .client
        .post(app.url("/slots"))
        .bearer_auth(&user.token)
        .header("content-type", "text/plain")
        .body("title=x")
        .send()
        .await
        .unwrap();
    assert_bad(resp, "wrong content type", Some("Content-Type")).await;

    for (body, field) in [
        (json!({"email": "not-an-email"}), "email"),
        (json!({"email": "a@b.c", "display_name": ""}), "display_name"),
        (json!({"email": "a@b.c", "role": "admin"}), "role"),
    ] {
        let resp = app.admin_post("/auth/users", &body).await;
        assert_bad(resp, &body.to_string(), Some(field)).await;
    }

    let now: Value = app.get_json(&user, &format!("/slots/{id}")).await;
    assert_eq!(now, slot);
    assert_eq!(app.list_slot_ids(&user, "").await.len(), 1);
}

#[tokio::test]
async fn a_method_a_route_does_not_have_is_a_405_listing_the_ones_it_has() {
    let app = spawn_app().await;
    let user = app.create_user("allow@example.com").await;
    let resp = app.user_send(&user, reqwest::Method::PATCH, "/slots").await;
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let id = uuid::Uuid::new_v4();
    let resp = app
        .user_send(&user, reqwest::Method::POST, &format!("/slots/{id}"))
        .await;
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "DELETE, GET, PUT");
    let body = assert_error(resp, 405, "method_not_allowed").await;
    assert!(body["message"].as_str().unwrap().contains("not allowed"));
}
