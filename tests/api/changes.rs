//! The change feed (`GET /changes`): what committed is in it, in order, for its user only;
//! a long poll wakes on a change; cursors are checked; the retention answers 410; and
//! replaying the feed rebuilds the slots `GET /slots` shows.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use google_calendar3::api::Event;
use proptest::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, QueryFilter};
use serde_json::{json, Value};
use slotsync::store::entities::changes;

use crate::helpers::{
    assert_error, event_id_of, slot_body, spawn_app, spawn_app_with_google, wait_until, TestApp, TestUser,
};

async fn feed(app: &TestApp, user: &TestUser, query: &str) -> Value {
    app.get_json(user, &format!("/changes{query}")).await
}

/// Every change of `user` from the start, following `next_cursor`.
async fn whole_feed(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let mut all = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let page = feed(app, user, &query).await;
        all.extend(page["changes"].as_array().unwrap().iter().cloned());
        if page["has_more"] != true {
            return all;
        }
        query = format!("?limit=3&after={}", page["next_cursor"].as_str().unwrap());
    }
}

fn kinds(changes: &[Value]) -> Vec<&str> {
    changes.iter().map(|c| c["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn api_writes_arrive_in_order_with_the_slot_as_it_became() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let start = app.get_json(&user, "/slots").await["changes_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let slot = app
        .create_slot(
            &user,
            &slot_body("first", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap();
    let renamed = app
        .put_slot(
            &user,
            id,
            &slot_body("renamed", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
            None,
        )
        .await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(app.delete_slot(&user, id).await.status(), 204);

    let page = feed(&app, &user, &format!("?after={start}")).await;
    let changes = page["changes"].as_array().unwrap();
    assert_eq!(
        kinds(changes),
        ["slot.created", "slot.updated", "slot.deleted"],
        "{page}"
    );
    assert!(
        changes.iter().all(|c| c["origin"] == "api" && c["slot_id"] == id),
        "{page}"
    );
    assert_eq!(changes[0]["slot"]["title"], "first");
    assert_eq!(changes[1]["slot"]["title"], "renamed");
    assert_eq!(changes[1]["slot"]["version"], 2);
    assert_eq!(changes[2]["slot"]["deleted"], true);
    assert_eq!(page["has_more"], false);
    assert_eq!(page["next_cursor"], changes[2]["cursor"]);

    // Nothing after the last one; the cursor of a change continues after it.
    let after_all = feed(
        &app,
        &user,
        &format!("?after={}", page["next_cursor"].as_str().unwrap()),
    )
    .await;
    assert_eq!(after_all["changes"], json!([]), "{after_all}");
    assert_eq!(after_all["next_cursor"], page["next_cursor"]);
    let after_first = feed(
        &app,
        &user,
        &format!("?after={}", changes[0]["cursor"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        kinds(after_first["changes"].as_array().unwrap()),
        ["slot.updated", "slot.deleted"]
    );
    // A refused write changes nothing and logs nothing.
    let bad = app.post_slot(&user, &json!({ "title": "" })).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(whole_feed(&app, &user).await.len(), 3);
}

#[tokio::test]
async fn a_user_never_sees_another_users_changes() {
    let app = spawn_app().await;
    let ada = app.create_user("ada@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    app.create_slot(
        &ada,
        &slot_body("ada's", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
    )
    .await;
    assert_eq!(whole_feed(&app, &bob).await, Vec::<Value>::new());
    // Ada's cursor means nothing to Bob: it is ahead of his feed.
    let ada_cursor = feed(&app, &ada, "").await["next_cursor"].as_str().unwrap().to_owned();
    let resp = app.get(&bob, &format!("/changes?after={ada_cursor}")).await;
    let body = assert_error(resp, 400, "invalid_field").await;
    assert_eq!(body["field"], "after");
}

#[tokio::test]
async fn a_long_poll_is_answered_by_the_next_change() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let cursor = feed(&app, &user, "").await["next_cursor"].as_str().unwrap().to_owned();
    let waiting = {
        let (api, token) = (app.api(), user.token.clone());
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let path = format!("/changes?after={cursor}&wait=30");
            let page = api.must(reqwest::Method::GET, &path, &token, None).await;
            (page, started.elapsed())
        })
    };
    // The poll is in; then a change commits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.create_slot(&user, &slot_body("now", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    let (page, waited) = waiting.await.unwrap();
    assert_eq!(kinds(page["changes"].as_array().unwrap()), ["slot.created"], "{page}");
    assert!(
        waited < Duration::from_secs(30),
        "answered by the change, not the timeout"
    );

    // With nothing new, `wait` runs out and the answer is empty.
    let next = page["next_cursor"].as_str().unwrap();
    let idle = feed(&app, &user, &format!("?after={next}&wait=1")).await;
    assert_eq!(idle["changes"], json!([]));
}

#[tokio::test]
async fn bad_and_expired_cursors_are_refused() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    for bad in ["nope", "Y2hhbmdlczotMQ"] {
        let body = assert_error(
            app.get(&user, &format!("/changes?after={bad}")).await,
            400,
            "invalid_field",
        )
        .await;
        assert_eq!(body["field"], "after");
    }
    let resp = app.get(&user, "/changes?wait=61").await;
    assert_eq!(resp.status(), 400);

    let start = feed(&app, &user, "").await["next_cursor"].as_str().unwrap().to_owned();
    for i in 0..2 {
        app.create_slot(
            &user,
            &slot_body(&format!("s{i}"), "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    }
    // The first change is older than the retention (30 days by default).
    changes::Entity::update_many()
        .col_expr(
            changes::Column::CreatedAt,
            Expr::value(Utc::now() - chrono::Duration::days(31)),
        )
        .filter(sea_orm::ColumnTrait::eq(&changes::Column::Seq, 1))
        .exec(&app.state.db)
        .await
        .unwrap();
    let run = app.admin_post("/admin/jobs/purge_old_records/run", &json!({})).await;
    assert_eq!(run.status(), 200);
    let body = assert_error(
        app.get(&user, &format!("/changes?after={start}")).await,
        410,
        "cursor_expired",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("GET /slots"), "{body}");
    // Starting again from GET /slots works, and the kept change is still there.
    let again = app.get_json(&user, "/slots").await;
    assert_eq!(again["items"].as_array().unwrap().len(), 2);
    let from_slots = feed(
        &app,
        &user,
        &format!("?after={}", again["changes_cursor"].as_str().unwrap()),
    )
    .await;
    assert_eq!(from_slots["changes"], json!([]));
    let kept = feed(&app, &user, "").await;
    assert_eq!(kinds(kept["changes"].as_array().unwrap()), ["slot.created"], "{kept}");
}

#[tokio::test]
async fn a_google_edit_arrives_with_origin_google_and_our_push_adds_nothing() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user("ada@example.com").await;
    let slot = ctx
        .app
        .create_slot(
            &user,
            &slot_body("mine", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap().to_owned();
    let pushed = ctx.app.wait_until_pushed(&id).await;
    assert!(pushed.google_event_id.is_some());
    let hub = ctx.google.user_hub("ada@example.com").await;
    let patch = Event {
        summary: Some("renamed in Google".into()),
        ..Default::default()
    };
    hub.events()
        .patch(patch, "primary", &event_id_of(&slot))
        .doit()
        .await
        .unwrap();
    ctx.app.pull(&user, "incremental").await;

    let all = whole_feed(&ctx.app, &user).await;
    let slot_changes: Vec<&Value> = all.iter().filter(|c| c["slot_id"] == id.as_str()).collect();
    let described: Vec<(&str, &str)> = slot_changes
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["origin"].as_str().unwrap()))
        .collect();
    assert_eq!(
        described,
        [("slot.created", "api"), ("slot.updated", "google")],
        "the push and the echo log nothing: {all:?}"
    );
    assert_eq!(slot_changes[1]["slot"]["title"], "renamed in Google");
    assert!(
        kinds(&all).contains(&"connection.connected"),
        "connecting is in the feed: {all:?}"
    );
}

#[tokio::test]
async fn needs_reauth_arrives_in_the_feed() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user("ada@example.com").await;
    ctx.google.revoke_tokens("ada@example.com").await;
    ctx.google.expire_access_tokens().await;
    ctx.app
        .create_slot(
            &user,
            &slot_body("after revoke", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    wait_until(
        "the feed tells the client to reconnect",
        Duration::from_secs(15),
        || async { kinds(&whole_feed(&ctx.app, &user).await).contains(&"connection.needs_reauth") },
    )
    .await;
}

/// One step of the replay property.
#[derive(Debug, Clone)]
enum Step {
    /// The app creates a slot on day `day`.
    Create { day: u8 },
    /// The app renames slot `slot` (modulo the slots created).
    Rename { slot: usize, title: u8 },
    /// The app deletes slot `slot`.
    Delete { slot: usize },
    /// The account owner renames slot `slot`'s event in Google; a pull follows.
    GoogleRename { slot: usize, title: u8 },
    /// The account owner deletes slot `slot`'s event in Google; a pull follows.
    GoogleDelete { slot: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1..28u8).prop_map(|day| Step::Create { day }),
        2 => (0..10usize, 0..9u8).prop_map(|(slot, title)| Step::Rename { slot, title }),
        1 => (0..10usize).prop_map(|slot| Step::Delete { slot }),
        2 => (0..10usize, 0..9u8).prop_map(|(slot, title)| Step::GoogleRename { slot, title }),
        1 => (0..10usize).prop_map(|slot| Step::GoogleDelete { slot }),
    ]
}

async fn replay_case(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user("ada@example.com").await;
    let hub = ctx.google.user_hub("ada@example.com").await;
    let mut ids: Vec<String> = Vec::new();
    for step in steps {
        let pick = |i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()].clone());
        match step {
            Step::Create { day } => {
                let body = slot_body(
                    &format!("d{day}"),
                    &format!("2026-12-{day:02}T09:00:00Z"),
                    &format!("2026-12-{day:02}T10:00:00Z"),
                );
                ids.push(
                    ctx.app.create_slot(&user, &body).await["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            Step::Rename { slot, title } => {
                let Some(id) = pick(slot) else { continue };
                let now = ctx.app.get(&user, &format!("/slots/{id}")).await;
                if now.status() != 200 {
                    continue;
                }
                let now: Value = now.json().await.unwrap();
                let body = json!({ "title": format!("app {title}"), "start": now["start"], "end": now["end"], "timezone": now["timezone"] });
                let _ = ctx.app.put_slot(&user, &id, &body, None).await;
            }
            Step::Delete { slot } => {
                let Some(id) = pick(slot) else { continue };
                let _ = ctx.app.delete_slot(&user, &id).await;
            }
            Step::GoogleRename { slot, title } => {
                let Some(id) = pick(slot) else { continue };
                let row = ctx.app.wait_until_pushed(&id).await;
                let (Some(event), None) = (row.google_event_id, row.deleted_at) else {
                    continue;
                };
                let patch = Event {
                    summary: Some(format!("google {title}")),
                    ..Default::default()
                };
                hub.events().patch(patch, "primary", &event).doit().await.unwrap();
                ctx.app.pull(&user, "incremental").await;
            }
            Step::GoogleDelete { slot } => {
                let Some(id) = pick(slot) else { continue };
                let row = ctx.app.wait_until_pushed(&id).await;
                let (Some(event), None) = (row.google_event_id, row.deleted_at) else {
                    continue;
                };
                hub.events().delete("primary", &event).doit().await.unwrap();
                ctx.app.pull(&user, "incremental").await;
            }
        }
    }
    for id in &ids {
        ctx.app.wait_until_pushed(id).await;
    }
    ctx.app.pull(&user, "incremental").await;

    let mut rebuilt: HashMap<String, Value> = HashMap::new();
    for change in whole_feed(&ctx.app, &user).await {
        if let (Some(id), Some(slot)) = (change["slot_id"].as_str(), change.get("slot")) {
            rebuilt.insert(id.to_owned(), slot.clone());
        }
    }
    let listed = ctx.app.get_json(&user, "/slots?include_deleted=true&limit=500").await;
    let listed = listed["items"].as_array().unwrap();
    prop_assert_eq!(rebuilt.len(), listed.len(), "every slot is in the feed");
    for slot in listed {
        let id = slot["id"].as_str().unwrap();
        let replayed = &rebuilt[id];
        for field in ["title", "start", "end", "timezone", "version", "deleted", "source"] {
            prop_assert_eq!(
                &replayed[field],
                &slot[field],
                "{} of {}: feed {} vs {}",
                field,
                id,
                replayed,
                slot
            );
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("FEED_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random API and Google edits (and deletions on both sides): replaying the feed from
    /// the start gives, for every slot, what `GET /slots?include_deleted=true` shows — the
    /// last change of each slot holds its content and version, and no slot is missing.
    /// CI runs `FEED_CASES` cases (default 4).
    #[test]
    fn replaying_the_feed_rebuilds_the_slots(steps in proptest::collection::vec(step(), 3..16)) {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(replay_case(steps))?;
    }
}
