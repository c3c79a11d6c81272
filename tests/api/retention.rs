//! `purge_old_records`: rows older than their retention go, newer ones stay. Old rows are
//! written straight through the entities with old timestamps; the job runs through
//! `POST /admin/jobs/purge_old_records/run`, as an operator would run it.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
use serde_json::json;
use slotsync::store::entities::{channels, idempotency_keys, sync_events};
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};

async fn user_id(app: &TestApp) -> Uuid {
    app.create_user(&format!("{}@example.com", Uuid::new_v4().simple()))
        .await
        .id
        .parse()
        .unwrap()
}

async fn idempotency_key(app: &TestApp, user: Uuid, key: &str, created_at: DateTime<Utc>) {
    idempotency_keys::ActiveModel {
        user_id: Set(user),
        key: Set(key.to_owned()),
        request_hash: Set("hash".into()),
        slot_id: Set(Uuid::new_v4()),
        created_at: Set(created_at),
    }
    .insert(&app.state.db)
    .await
    .unwrap();
}

fn sync_event(user: Uuid, at: DateTime<Utc>) -> sync_events::ActiveModel {
    sync_events::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user),
        slot_id: Set(None),
        kind: Set("conflict".into()),
        detail: Set("{}".into()),
        at: Set(at),
    }
}

/// A channel created a month ago that expires at `expires_at`, stopped at `stopped_at`,
/// held by a renewal until `lease`.
async fn channel(
    app: &TestApp,
    user: Uuid,
    expires_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
    lease: Option<DateTime<Utc>>,
) -> Uuid {
    let id = Uuid::new_v4();
    channels::ActiveModel {
        id: Set(id),
        user_id: Set(user),
        resource_id: Set(Some("resource".into())),
        expires_at: Set(expires_at),
        created_at: Set(Utc::now() - Duration::days(30)),
        stopped_at: Set(stopped_at),
        renew_lease_until: Set(lease),
        replaced_by: Set(None),
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn one_run_deletes_what_is_older_than_each_retention_and_keeps_the_rest() {
    let app = spawn_app().await;
    let user = user_id(&app).await;
    let now = Utc::now();

    // Idempotency keys: 24 hours by default.
    idempotency_key(&app, user, "old", now - Duration::hours(25)).await;
    idempotency_key(&app, user, "recent", now - Duration::hours(23)).await;
    // Sync events: 90 days by default.
    let old_event = sync_event(user, now - Duration::days(91))
        .insert(&app.state.db)
        .await
        .unwrap()
        .id;
    let recent_event = sync_event(user, now - Duration::days(89))
        .insert(&app.state.db)
        .await
        .unwrap()
        .id;
    // Channels: 7 days after they were stopped, or expired without being stopped.
    let days = Duration::days;
    let stopped_long_ago = channel(&app, user, now + days(1), Some(now - days(8)), None).await;
    let stopped_lately = channel(&app, user, now + days(1), Some(now - days(6)), None).await;
    let expired_long_ago = channel(&app, user, now - days(8), None, None).await;
    let expired_lately = channel(&app, user, now - days(6), None, None).await;
    let live = channel(&app, user, now + days(3), None, None).await;
    let being_renewed = channel(&app, user, now - days(8), None, Some(now + Duration::minutes(5))).await;

    let outcome = app.run_job("purge_old_records").await;
    assert_eq!(
        outcome,
        json!({"idempotency_keys": 1, "sync_events": 1, "channels": 2, "changes": 0}),
        "{outcome}"
    );

    let db = &app.state.db;
    let key = |k: &str| idempotency_keys::Entity::find_by_id((user, k.to_owned())).one(db);
    assert!(key("old").await.unwrap().is_none());
    assert!(key("recent").await.unwrap().is_some());
    assert!(sync_events::Entity::find_by_id(old_event)
        .one(db)
        .await
        .unwrap()
        .is_none());
    assert!(sync_events::Entity::find_by_id(recent_event)
        .one(db)
        .await
        .unwrap()
        .is_some());
    for (id, kept, what) in [
        (stopped_long_ago, false, "stopped 8 days ago"),
        (expired_long_ago, false, "expired 8 days ago"),
        (stopped_lately, true, "stopped 6 days ago"),
        (expired_lately, true, "expired 6 days ago"),
        (live, true, "live"),
        (being_renewed, true, "held by a renewal"),
    ] {
        let found = channels::Entity::find_by_id(id).one(db).await.unwrap();
        assert_eq!(found.is_some(), kept, "the channel {what}");
    }

    let again = app.run_job("purge_old_records").await;
    assert_eq!(
        again,
        json!({"idempotency_keys": 0, "sync_events": 0, "channels": 0, "changes": 0})
    );
}

#[tokio::test]
async fn a_backlog_larger_than_a_batch_is_deleted_in_one_run() {
    let app = spawn_app().await;
    let user = user_id(&app).await;
    let before = sync_events::Entity::find().count(&app.state.db).await.unwrap();
    let old = Utc::now() - Duration::days(200);
    let backlog = 2 * slotsync::jobs::purge_old_records::PURGE_BATCH + 3;
    let rows: Vec<_> = (0..backlog).map(|_| sync_event(user, old)).collect();
    for chunk in rows.chunks(100) {
        sync_events::Entity::insert_many(chunk.to_vec())
            .exec(&app.state.db)
            .await
            .unwrap();
    }
    let recent = sync_event(user, Utc::now()).insert(&app.state.db).await.unwrap().id;

    let outcome = app.run_job("purge_old_records").await;
    assert_eq!(outcome["sync_events"], backlog, "{outcome}");
    let left = sync_events::Entity::find().count(&app.state.db).await.unwrap();
    assert_eq!(left, before + 1, "the events newer than 90 days stay");
    let recent_kept = sync_events::Entity::find_by_id(recent)
        .one(&app.state.db)
        .await
        .unwrap();
    assert!(recent_kept.is_some());
}

#[tokio::test]
async fn the_retention_periods_are_settings() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.idempotency_retention_hours = 1;
        s.audit_retention_days = 1;
        s.channel_retention_days = 1;
    })
    .await;
    let user = user_id(&app).await;
    let now = Utc::now();
    idempotency_key(&app, user, "two-hours-old", now - Duration::hours(2)).await;
    sync_event(user, now - Duration::days(2))
        .insert(&app.state.db)
        .await
        .unwrap();
    channel(&app, user, now + Duration::days(1), Some(now - Duration::days(2)), None).await;

    let outcome = app.run_job("purge_old_records").await;
    assert_eq!(
        outcome,
        json!({"idempotency_keys": 1, "sync_events": 1, "channels": 1, "changes": 0})
    );
}

#[tokio::test]
async fn the_purge_is_listed_with_the_other_jobs() {
    let app = spawn_app().await;
    let jobs: serde_json::Value = app.admin_get("/admin/jobs").await.json().await.unwrap();
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["name"].as_str())
        .collect();
    assert!(names.contains(&"purge_old_records"), "{jobs}");
}
