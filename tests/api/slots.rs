use serde_json::{json, Value};

use crate::helpers::{assert_error, slot_body, spawn_app};
use slotsync_testkit::{sync_state, SyncState};

#[tokio::test]
async fn a_slot_is_created_read_updated_with_if_match_and_deleted() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;

    let resp = app
        .post_slot(
            &user,
            &slot_body("Focus", "2026-12-01T09:00:00+01:00", "2026-12-01T10:30:00+01:00"),
        )
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["version"], 1);
    assert_eq!(created["source"], "app");
    assert_eq!(sync_state(&created), SyncState::Pending);
    assert_eq!(created["deleted"], false);

    let resp = app.get(&user, &format!("/slots/{id}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["start"], "2026-12-01T09:00:00+01:00");
    assert_eq!(got["end"], "2026-12-01T10:30:00+01:00");

    let update = json!({"title": "Deep focus", "description": "no meetings",
        "start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T11:00:00+01:00", "timezone": "Europe/Paris"});
    let resp = app.put_slot(&user, &id, &update, Some("\"1\"")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["title"], "Deep focus");
    assert_eq!(updated["description"], "no meetings");
    assert_eq!(updated["version"], 2);

    assert_eq!(app.delete_slot(&user, &id).await.status(), 204);
    assert_error(app.delete_slot(&user, &id).await, 404, "not_found").await;
    assert_error(app.get(&user, &format!("/slots/{id}")).await, 404, "not_found").await;
    assert!(app.list_slot_ids(&user, "").await.is_empty());
    assert_eq!(app.list_slot_ids(&user, "include_deleted=true").await, vec![id]);
}

#[tokio::test]
async fn a_stale_if_match_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let slot = app
        .create_slot(&user, &slot_body("v1", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    let id = slot["id"].as_str().unwrap();
    let ok = app
        .put_slot(
            &user,
            id,
            &slot_body("v2", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            Some("1"),
        )
        .await;
    assert_eq!(ok.status(), 200);

    let stale = app
        .put_slot(
            &user,
            id,
            &slot_body("lost", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            Some("\"1\""),
        )
        .await;
    let body = assert_error(stale, 412, "version_mismatch").await;
    assert_eq!(body["field"], "If-Match");
    assert!(body["message"].as_str().unwrap().contains('2'));

    let now: Value = app.get_json(&user, &format!("/slots/{id}")).await;
    assert_eq!(now["title"], "v2");
    assert_eq!(now["version"], 2);

    let stale_delete = app
        .client
        .delete(app.url(&format!("/slots/{id}")))
        .bearer_auth(&user.token)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_error(stale_delete, 412, "version_mismatch").await;
    assert_eq!(app.get(&user, &format!("/slots/{id}")).await.status(), 200);
}

#[tokio::test]
async fn times_are_shown_in_the_slots_zone_even_far_from_utc() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let slot = app
        .create_slot(
            &user,
            &json!({"title": "Sunrise", "start": "2026-12-31T20:00:00Z", "end": "2026-12-31T21:00:00Z",
                    "timezone": "Pacific/Kiritimati"}),
        )
        .await;
    assert_eq!(slot["start"], "2027-01-01T10:00:00+14:00");
    let slot = app
        .create_slot(
            &user,
            &json!({"title": "Tea", "start": "2026-07-01T12:00:00Z", "end": "2026-07-01T13:00:00Z",
                    "timezone": "America/St_Johns"}),
        )
        .await;
    assert_eq!(slot["start"], "2026-07-01T09:30:00-02:30");
}

#[tokio::test]
async fn an_all_day_slot_keeps_its_dates_with_an_exclusive_end() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let slot = app
        .create_slot(
            &user,
            &json!({"title": "Holiday", "all_day": true, "start_date": "2026-12-24",
                    "end_date": "2026-12-26", "timezone": "Pacific/Kiritimati"}),
        )
        .await;
    assert_eq!(slot["all_day"], true);
    assert_eq!(slot["start_date"], "2026-12-24");
    assert_eq!(slot["end_date"], "2026-12-26");
    assert_eq!(slot["start"], "2026-12-24T00:00:00+14:00");
    assert_eq!(slot["end"], "2026-12-26T00:00:00+14:00");
}

#[tokio::test]
async fn slots_are_listed_by_start_across_pages_and_filtered_by_range() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let mut expected = Vec::new();
    // Created out of order, with two slots sharing a start to exercise the cursor's tie-break.
    for (i, day) in [5, 1, 3, 3, 2, 4].iter().enumerate() {
        let start = format!("2026-12-{day:02}T09:00:00Z");
        let end = format!("2026-12-{day:02}T10:00:00Z");
        let s = app.create_slot(&user, &slot_body(&format!("s{i}"), &start, &end)).await;
        expected.push((*day, s["id"].as_str().unwrap().to_owned()));
    }
    expected.sort();
    let all = app.list_slot_ids(&user, "limit=2").await;
    assert_eq!(all, expected.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>());

    let ranged = app
        .list_slot_ids(&user, "from=2026-12-02T09:30:00Z&to=2026-12-04T09:00:00Z")
        .await;
    let want: Vec<String> = expected
        .iter()
        .filter(|(d, _)| (2..=3).contains(d))
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(ranged, want);
}

#[tokio::test]
async fn a_user_cannot_see_or_touch_another_users_slot() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com").await;
    let intruder = app.create_user("intruder@example.com").await;
    let slot = app
        .create_slot(
            &owner,
            &slot_body("private", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap();

    assert_error(app.get(&intruder, &format!("/slots/{id}")).await, 404, "not_found").await;
    let put = app
        .put_slot(
            &intruder,
            id,
            &slot_body("mine", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            None,
        )
        .await;
    assert_error(put, 404, "not_found").await;
    assert_error(app.delete_slot(&intruder, id).await, 404, "not_found").await;
    assert!(app.list_slot_ids(&intruder, "include_deleted=true").await.is_empty());

    let still: Value = app.get_json(&owner, &format!("/slots/{id}")).await;
    assert_eq!(still["title"], "private");
    assert_eq!(still["version"], 1);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let send = |body: Value, key: &'static str| {
        app.client
            .post(app.url("/slots"))
            .bearer_auth(&user.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let body = slot_body("once", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    let first = send(body.clone(), "key-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();

    // The same body with its keys in another order is the same request.
    let reordered: Value = serde_json::from_str(
        r#"{"timezone":"Europe/Paris","end":"2026-12-01T10:00:00Z","start":"2026-12-01T09:00:00Z","title":"once"}"#,
    )
    .unwrap();
    let second = send(reordered, "key-1").await.unwrap();
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(app.list_slot_ids(&user, "").await.len(), 1);

    let other = send(
        slot_body("twice", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        "key-1",
    )
    .await
    .unwrap();
    let err = assert_error(other, 422, "idempotency_key_reused").await;
    assert_eq!(err["field"], "Idempotency-Key");
    assert_eq!(app.list_slot_ids(&user, "").await.len(), 1);

    // Keys belong to their user: another user's key-1 is a new request.
    let stranger = app.create_user("s@example.com").await;
    let theirs = app
        .client
        .post(app.url("/slots"))
        .bearer_auth(&stranger.token)
        .header("Idempotency-Key", "key-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 201);
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_slot() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let body = slot_body("race", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    let futures = (0..8).map(|_| {
        app.client
            .post(app.url("/slots"))
            .bearer_auth(&user.token)
            .header("Idempotency-Key", "same")
            .json(&body)
            .send()
    });
    let answers = futures::future::join_all(futures).await;
    let mut ids = std::collections::BTreeSet::new();
    for a in answers {
        let a = a.unwrap();
        assert_eq!(a.status(), 201);
        let v: Value = a.json().await.unwrap();
        ids.insert(v["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.list_slot_ids(&user, "").await.len(), 1);
}

#[tokio::test]
async fn every_local_write_lands_in_the_outbox_with_the_slot() {
    use sea_orm::EntityTrait;
    use slotsync::store::entities::slots;
    let app = spawn_app().await;
    let user = app.create_user("u@example.com").await;
    let slot = app
        .create_slot(&user, &slot_body("out", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    let id = uuid::Uuid::parse_str(slot["id"].as_str().unwrap()).unwrap();
    let row = slots::Entity::find_by_id(id).one(&app.state.db).await.unwrap().unwrap();
    assert_eq!(row.push_state, slotsync::domain::PushState::Dirty);
    assert!(row.next_push_at.is_some());
    assert_eq!(app.delete_slot(&user, &id.to_string()).await.status(), 204);
    let row = slots::Entity::find_by_id(id).one(&app.state.db).await.unwrap().unwrap();
    assert!(row.deleted_at.is_some());
    assert_eq!(row.push_state, slotsync::domain::PushState::Dirty);
    assert_eq!(row.version, 2);
}
