//! Events and calendars over raw HTTP: etags, 409/410/412, ids, times, 401, calendars.

use crate::helpers::{reason, timed_event, TestGoogle};
use reqwest::Method;
use serde_json::json;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

#[tokio::test]
async fn every_modification_changes_etag_and_updated_and_time_changes_bump_sequence() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let created = google.insert(&t, "primary", timed_event("standup", 3, 9)).await;
    assert_eq!(created["kind"], "calendar#event");
    assert_eq!(created["status"], "confirmed");
    assert_eq!(created["sequence"], 0);
    let etag = created["etag"].as_str().unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "etag is a quoted string: {etag}"
    );
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["iCalUID"], format!("{id}@google.com"));
    let path = format!("{EVENTS}/{id}");

    let patched = google
        .send(Method::PATCH, &path, Some(&t), Some(json!({"summary": "daily"})), &[])
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["summary"], "daily");
    assert_eq!(patched.body["start"], created["start"], "unset fields are kept");
    assert_eq!(patched.body["sequence"], 0, "no time change, no sequence bump");
    assert_ne!(patched.body["etag"], created["etag"]);
    assert!(patched.body["updated"].as_str() > created["updated"].as_str());

    let mut replacement = timed_event("moved", 3, 10);
    replacement["description"] = json!("full replace");
    let updated = google.send(Method::PUT, &path, Some(&t), Some(replacement), &[]).await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["sequence"], 1);
    assert_eq!(updated.body["created"], created["created"]);
    assert_ne!(updated.body["etag"], patched.body["etag"]);

    let got = google.get(&path, &t).await;
    assert_eq!(got.body, updated.body);

    let deleted = google.send(Method::DELETE, &path, Some(&t), None, &[]).await;
    assert_eq!(deleted.status, 204);
    let after = google.get(&path, &t).await;
    assert_eq!(after.status, 200, "a deleted event can still be fetched");
    assert_eq!(after.body["status"], "cancelled");
}

#[tokio::test]
async fn reinserting_an_existing_or_deleted_id_is_409_duplicate() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let mut ev = timed_event("a", 3, 9);
    ev["id"] = json!("slot0123456789abcdefghijkl");
    google.insert(&t, "primary", ev.clone()).await;
    let again = google.send(Method::POST, EVENTS, Some(&t), Some(ev.clone()), &[]).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body["error"]["errors"][0],
        json!({"domain": "global", "reason": "duplicate",
        "message": "The requested identifier already exists."})
    );
    assert_eq!(again.body["error"]["code"], 409);
    google
        .send(
            Method::DELETE,
            &format!("{EVENTS}/slot0123456789abcdefghijkl"),
            Some(&t),
            None,
            &[],
        )
        .await;
    let after_delete = google.send(Method::POST, EVENTS, Some(&t), Some(ev), &[]).await;
    assert_eq!(after_delete.status, 409);
}

#[tokio::test]
async fn deleting_twice_is_410_deleted_and_unknown_ids_are_404_not_found() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let id = google.insert(&t, "primary", timed_event("a", 3, 9)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{EVENTS}/{id}");
    assert_eq!(
        google.send(Method::DELETE, &path, Some(&t), None, &[]).await.status,
        204
    );
    let twice = google.send(Method::DELETE, &path, Some(&t), None, &[]).await;
    assert_eq!((twice.status, reason(&twice)), (410, "deleted"));
    let patch = google
        .send(Method::PATCH, &path, Some(&t), Some(json!({"summary": "b"})), &[])
        .await;
    assert_eq!(patch.status, 410);
    let missing = google.get(&format!("{EVENTS}/nosuchevent0"), &t).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND",
        "errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}]}})
    );
}

#[tokio::test]
async fn a_stale_if_match_is_412_condition_not_met_and_a_current_one_succeeds() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let ev = google.insert(&t, "primary", timed_event("a", 3, 9)).await;
    let path = format!("{EVENTS}/{}", ev["id"].as_str().unwrap());
    let old = ev["etag"].as_str().unwrap().to_owned();
    let ok = google
        .send(
            Method::PATCH,
            &path,
            Some(&t),
            Some(json!({"summary": "b"})),
            &[("If-Match", &old)],
        )
        .await;
    assert_eq!(ok.status, 200);
    for method in [Method::PATCH, Method::PUT, Method::DELETE] {
        let body = (method != Method::DELETE).then(|| timed_event("c", 3, 9));
        let stale = google
            .send(method.clone(), &path, Some(&t), body, &[("If-Match", &old)])
            .await;
        assert_eq!(stale.status, 412, "{method}");
        assert_eq!(
            stale.body["error"]["errors"][0],
            json!({"domain": "global", "reason": "conditionNotMet",
            "message": "Precondition Failed", "locationType": "header", "location": "If-Match"})
        );
    }
}

#[tokio::test]
async fn invalid_ids_times_and_bodies_are_400() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let mut bad_id = timed_event("a", 3, 9);
    bad_id["id"] = json!("UPPER_case");
    let a = google.send(Method::POST, EVENTS, Some(&t), Some(bad_id), &[]).await;
    assert_eq!((a.status, reason(&a)), (400, "invalid"));
    let mut short = timed_event("a", 3, 9);
    short["id"] = json!("abcd");
    assert_eq!(
        google
            .send(Method::POST, EVENTS, Some(&t), Some(short), &[])
            .await
            .status,
        400
    );
    let backwards = json!({"start": {"dateTime": "2025-03-03T10:00:00Z"}, "end": {"dateTime": "2025-03-03T09:00:00Z"}});
    let a = google.send(Method::POST, EVENTS, Some(&t), Some(backwards), &[]).await;
    assert_eq!((a.status, reason(&a)), (400, "timeRangeEmpty"));
    let no_end = json!({"start": {"dateTime": "2025-03-03T10:00:00Z"}});
    let a = google.send(Method::POST, EVENTS, Some(&t), Some(no_end), &[]).await;
    assert_eq!((a.status, reason(&a)), (400, "required"));
    let mixed = json!({"start": {"date": "2025-03-03"}, "end": {"dateTime": "2025-03-03T09:00:00Z"}});
    assert_eq!(
        google
            .send(Method::POST, EVENTS, Some(&t), Some(mixed), &[])
            .await
            .status,
        400
    );
    let recurring_without_zone = json!({"start": {"dateTime": "2025-03-03T10:00:00Z"},
        "end": {"dateTime": "2025-03-03T11:00:00Z"}, "recurrence": ["RRULE:FREQ=DAILY"]});
    assert_eq!(
        google
            .send(Method::POST, EVENTS, Some(&t), Some(recurring_without_zone), &[])
            .await
            .status,
        400
    );
    let r = google
        .http
        .post(google.url(EVENTS))
        .bearer_auth(&t)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["reason"], "parseError");
}

#[tokio::test]
async fn all_day_events_and_local_times_with_a_zone_are_accepted() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    google
        .insert(
            &t,
            "primary",
            json!({"start": {"date": "2025-03-03"}, "end": {"date": "2025-03-04"}}),
        )
        .await;
    google
        .insert(
            &t,
            "primary",
            json!({"start": {"dateTime": "2025-03-03T09:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2025-03-03T10:00:00", "timeZone": "Europe/Berlin"}}),
        )
        .await;
}

#[tokio::test]
async fn missing_and_invalid_tokens_are_401_with_www_authenticate() {
    let google = TestGoogle::start().await;
    let missing = google.send(Method::GET, EVENTS, None, None, &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.headers["www-authenticate"],
        r#"Bearer realm="https://accounts.google.com/""#
    );
    assert_eq!(missing.body["error"]["status"], "UNAUTHENTICATED");
    let invalid = google.get(EVENTS, "ya29.not-a-token").await;
    assert_eq!(invalid.status, 401);
    assert_eq!(
        invalid.headers["www-authenticate"],
        r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#
    );
    assert_eq!(
        invalid.body["error"]["errors"][0],
        json!({"domain": "global", "reason": "authError",
        "message": invalid.body["error"]["message"], "locationType": "header", "location": "Authorization"})
    );
    let t = google.user_token("ann@example.com").await;
    google
        .control("/tokens/revoke", json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(google.get(EVENTS, &t).await.status, 401);
}

#[tokio::test]
async fn calendars_can_be_created_fetched_listed_and_deleted() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let created = google
        .send(
            Method::POST,
            "/calendar/v3/calendars",
            Some(&t),
            Some(json!({"summary": "slotsync", "timeZone": "Europe/Paris"})),
            &[],
        )
        .await;
    assert_eq!(created.status, 200);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.ends_with("@group.calendar.google.com"), "{id}");
    assert_eq!(created.body["kind"], "calendar#calendar");
    assert_eq!(created.body["timeZone"], "Europe/Paris");
    let got = google.get(&format!("/calendar/v3/calendars/{id}"), &t).await;
    assert_eq!(got.body["summary"], "slotsync");
    let list = google.get("/calendar/v3/users/me/calendarList", &t).await;
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["ann@example.com", id.as_str()]);
    assert_eq!(list.body["items"][1]["accessRole"], "owner");
    let other = google.user_token("bob@example.com").await;
    assert_eq!(
        google.get(&format!("/calendar/v3/calendars/{id}"), &other).await.status,
        404
    );
    assert_eq!(
        google
            .get(&format!("/calendar/v3/calendars/{id}/events"), &other)
            .await
            .status,
        404
    );
    let primary = google
        .send(Method::DELETE, "/calendar/v3/calendars/primary", Some(&t), None, &[])
        .await;
    assert_eq!(primary.status, 400);
    let del = google
        .send(
            Method::DELETE,
            &format!("/calendar/v3/calendars/{id}"),
            Some(&t),
            None,
            &[],
        )
        .await;
    assert_eq!(del.status, 204);
    assert_eq!(
        google.get(&format!("/calendar/v3/calendars/{id}"), &t).await.status,
        404
    );
    let untitled = google
        .send(Method::POST, "/calendar/v3/calendars", Some(&t), Some(json!({})), &[])
        .await;
    assert_eq!((untitled.status, reason(&untitled)), (400, "required"));
}

#[tokio::test]
async fn calendar_ids_are_accepted_with_at_sign_or_percent_40() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let ev = google.insert(&t, "ann%40example.com", timed_event("a", 3, 9)).await;
    let id = ev["id"].as_str().unwrap();
    assert_eq!(
        google
            .get(&format!("/calendar/v3/calendars/ann@example.com/events/{id}"), &t)
            .await
            .status,
        200
    );
    assert_eq!(
        google
            .get(&format!("/calendar/v3/calendars/primary/events/{id}"), &t)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn extended_properties_and_unknown_fields_round_trip() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let mut ev = timed_event("a", 3, 9);
    ev["extendedProperties"] = json!({"private": {"slotsync_slot": "s1", "slotsync_fp": "f"}});
    ev["colorId"] = json!("5");
    let created = google.insert(&t, "primary", ev).await;
    assert_eq!(created["extendedProperties"]["private"]["slotsync_slot"], "s1");
    assert_eq!(created["colorId"], "5");
    let path = format!("{EVENTS}/{}", created["id"].as_str().unwrap());
    let patched = google
        .send(
            Method::PATCH,
            &path,
            Some(&t),
            Some(json!({"extendedProperties": {"private": {"slotsync_fp": "g"}}})),
            &[],
        )
        .await;
    assert_eq!(
        patched.body["extendedProperties"]["private"],
        json!({"slotsync_slot": "s1", "slotsync_fp": "g"})
    );
}
