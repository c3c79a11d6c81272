//! Fair pushes: one user's backlog cannot hold every push slot while it waits on that
//! user's Google limit. Claims take users in turn and give each no more than its room
//! under `PUSH_PER_USER_IN_FLIGHT`, slots already in flight included.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, StreamExt};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseBackend, EntityTrait, QueryFilter};
use slotsync::config::Settings;
use slotsync::domain::UserId;
use slotsync::store::entities::sync_states;
use slotsync::store::slots::SlotRow;
use slotsync::store::{self, outbox};
use slotsync_testkit::TestSettings;
use uuid::Uuid;

use crate::helpers::{slot_body, spawn_app_with_google, spawn_app_with_google_and, ConnectedApp, TestUser};

/// Creates `n` slots for `user`, eight requests at a time; returns their ids in creation
/// order of the requests (not of their answers).
async fn create_slots(ctx: &ConnectedApp, user: &TestUser, n: usize) -> Vec<String> {
    stream::iter(0..n)
        .map(|i| async move {
            let body = slot_body(&format!("s{i}"), "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
            ctx.app.create_slot(user, &body).await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .buffered(8)
        .collect()
        .await
}

fn user_id(user: &TestUser) -> UserId {
    UserId(Uuid::parse_str(&user.id).unwrap())
}

#[tokio::test]
async fn a_small_users_slot_is_pushed_while_a_big_users_backlog_still_drains() {
    const CAP: u64 = 2;
    // 60 calls a minute: a burst of 6, then one call every 60/54 s. 300 slots take the big
    // user about five minutes; without the cap its claimed slots would fill every push
    // slot and queue ahead of the small user's.
    let ctx = spawn_app_with_google_and(|s| {
        s.google_user_calls_per_minute = 60;
        s.push_per_user_in_flight = CAP as usize;
    })
    .await;
    let big = ctx.app.connected_user("big@example.com").await;
    let small = ctx.app.connected_user("small@example.com").await;
    create_slots(&ctx, &big, 300).await;

    let slot = ctx
        .app
        .create_slot(
            &small,
            &slot_body("small", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z"),
        )
        .await;
    let id = slot["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut most_in_flight = 0;
    loop {
        let big_depth = outbox::depth(&ctx.app.state.db, user_id(&big), Utc::now())
            .await
            .unwrap();
        most_in_flight = most_in_flight.max(big_depth.in_flight);
        let row = ctx.app.slot_row(id).await;
        if row.push_state == slotsync::domain::PushState::Clean && row.synced_version == Some(row.version) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the small user's slot waited behind the big user's backlog: {row:?}, big user {big_depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let big_depth = outbox::depth(&ctx.app.state.db, user_id(&big), Utc::now())
        .await
        .unwrap();
    assert!(
        big_depth.dirty > 100,
        "the big user's backlog is still draining (the limit allows 6 + 1 per 1.1 s): {big_depth:?}"
    );
    assert!(
        most_in_flight.max(big_depth.in_flight) <= CAP,
        "at most {CAP} of the big user's slots were claimed at once (seen {most_in_flight})"
    );
    assert_eq!(ctx.google.events("small@example.com").await.len(), 1);
}

/// Opens the user's breaker for an hour, so the running worker leaves the user's slots
/// alone while the test claims them itself, with a `now` after the breaker closes.
async fn hold_off_the_worker(ctx: &ConnectedApp, user: &TestUser) {
    sync_states::Entity::update_many()
        .col_expr(
            sync_states::Column::BreakerOpenUntil,
            Expr::value(Some(Utc::now() + chrono::Duration::hours(1))),
        )
        .filter(sync_states::Column::UserId.eq(user_id(user).0))
        .exec(&ctx.app.state.db)
        .await
        .unwrap();
}

/// Claims in a transaction of its own, committed.
async fn claim(ctx: &ConnectedApp, now: chrono::DateTime<Utc>, limit: u64, per_user: u64) -> Vec<SlotRow> {
    let txn = store::begin_write(&ctx.app.state.db).await.unwrap();
    let rows = outbox::claim_due(&txn, now, Duration::from_secs(60), limit, per_user)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    rows
}

fn ids(rows: &[SlotRow]) -> Vec<String> {
    rows.iter().map(|r| r.id.to_string()).collect()
}

#[tokio::test]
async fn claims_take_users_in_turn_and_count_the_slots_already_in_flight() {
    let ctx = spawn_app_with_google().await;
    let (a, b, c) = (
        ctx.app.connected_user("a@example.com").await,
        ctx.app.connected_user("b@example.com").await,
        ctx.app.connected_user("c@example.com").await,
    );
    for user in [&a, &b, &c] {
        hold_off_the_worker(&ctx, user).await;
    }
    // Oldest first: a's five, then b's three, then c's one.
    let mut slots_of = HashMap::new();
    for (user, n) in [(&a, 5), (&b, 3), (&c, 1)] {
        let mut mine = Vec::new();
        for i in 0..n {
            let body = slot_body(&format!("s{i}"), "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
            mine.push(
                ctx.app.create_slot(user, &body).await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        slots_of.insert(user.id.clone(), mine);
    }
    let (sa, sb, sc) = (&slots_of[&a.id], &slots_of[&b.id], &slots_of[&c.id]);
    let later = Utc::now() + chrono::Duration::hours(2);

    // Each user's oldest, users by their oldest due slot, then each one's second.
    let first = claim(&ctx, later, 100, 2).await;
    assert_eq!(ids(&first), [&sa[0], &sb[0], &sc[0], &sa[1], &sb[1]].map(String::clone));
    // a and b are at the cap with two slots in flight each; c has nothing more.
    assert!(claim(&ctx, later, 100, 2).await.is_empty());
    // A push of a's ends: a has room for one more, its oldest still due.
    outbox::release(&ctx.app.state.db, first[0].id).await.unwrap();
    assert_eq!(ids(&claim(&ctx, later, 100, 2).await), [&sa[0]].map(String::clone));
    // A higher cap lets each user take more, still in turns; the limit cuts the claim.
    assert_eq!(
        ids(&claim(&ctx, later, 3, 4).await),
        [&sa[2], &sb[2], &sa[3]].map(String::clone)
    );
    assert!(
        outbox::next_due_at(&ctx.app.state.db, later, 4)
            .await
            .unwrap()
            .is_none(),
        "a user at the cap has no slot due: a has four in flight, b and c none left"
    );
    assert!(outbox::next_due_at(&ctx.app.state.db, later, 5)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn two_claims_at_once_never_share_a_slot_nor_pass_the_per_user_cap() {
    let ctx = spawn_app_with_google().await;
    let mut users = Vec::new();
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        let user = ctx.app.connected_user(email).await;
        hold_off_the_worker(&ctx, &user).await;
        create_slots(&ctx, &user, 3).await;
        users.push(user);
    }
    let later = Utc::now() + chrono::Duration::hours(2);
    let db = &ctx.app.state.db;
    let lease = Duration::from_secs(60);
    let (first, second) = if db.get_database_backend() == DatabaseBackend::Postgres {
        // Both transactions open at once: the second ranks the same slots as the first,
        // skips the rows the first holds, and stops at each user's room.
        let one = store::begin_write(db).await.unwrap();
        let first = outbox::claim_due(&one, later, lease, 2, 2).await.unwrap();
        let two = store::begin_write(db).await.unwrap();
        let second = outbox::claim_due(&two, later, lease, 10, 2).await.unwrap();
        one.commit().await.unwrap();
        two.commit().await.unwrap();
        (first, second)
    } else {
        // SQLite has one writer: the second claim starts once the first committed.
        (claim(&ctx, later, 2, 2).await, claim(&ctx, later, 10, 2).await)
    };
    assert_eq!(first.len(), 2, "{:?}", ids(&first));
    let taken: HashSet<Uuid> = first.iter().map(|r| r.id).collect();
    assert!(
        second.iter().all(|r| !taken.contains(&r.id)),
        "a slot was claimed twice"
    );
    let mut per_user: HashMap<Uuid, usize> = HashMap::new();
    for row in first.iter().chain(&second) {
        *per_user.entry(row.user_id).or_default() += 1;
    }
    assert_eq!(per_user.len(), 3, "{per_user:?}");
    assert!(
        per_user.values().all(|n| *n == 2),
        "two per user, no more: {per_user:?}"
    );
}

#[tokio::test]
async fn a_per_user_cap_of_zero_is_refused_at_startup() {
    let (url, _db) = crate::helpers::test_database().await;
    let mut settings = Settings::for_tests(&url);
    settings.push_per_user_in_flight = 0;
    let err = slotsync::app::Application::build(settings)
        .await
        .err()
        .expect("the settings are refused");
    assert!(err.to_string().contains("PUSH_PER_USER_IN_FLIGHT"), "{err:#}");
}
