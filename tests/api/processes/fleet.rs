//! The due-based fallback schedule run by real `slotsync serve` processes: a few hundred
//! users, an interval of seconds, several cycles — every user pulled exactly once per
//! cycle, even when an instance is killed holding claims. On PostgreSQL (the fleet's
//! database) two instances share the work and the Google quota; on SQLite, which is for
//! one instance, one instance is killed and started again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use slotsync::store::entities::sync_states;
use slotsync_testkit::{callback_url, fleet::seed_connections, wait_until, ADMIN_TOKEN};
use uuid::Uuid;

use super::support::{free_port, Google, Service, ServiceSpec};
use crate::helpers::test_database;

/// Users pulled by the schedule: on PostgreSQL by two instances; on SQLite, whose single
/// writer serialises every pull's transactions, by one (a debug build on a busy machine).
fn users(postgres: bool) -> u64 {
    if postgres {
        300
    } else {
        100
    }
}
/// The fallback interval: one pull per user per this many seconds.
const INTERVAL_SECS: i64 = 10;
/// Fallback pulls in flight per instance.
const CONCURRENCY: &str = "16";

/// Each user's schedule as the database holds it.
#[derive(Debug, Clone, Copy)]
struct Row {
    next: DateTime<Utc>,
    pulls: i64,
}

async fn schedule(db: &sea_orm::DatabaseConnection, users: &[Uuid]) -> HashMap<Uuid, Option<Row>> {
    sync_states::Entity::find()
        .filter(sync_states::Column::UserId.is_in(users.iter().copied()))
        .all(db)
        .await
        .expect("the sync states are read")
        .into_iter()
        .map(|s| {
            let row = s.next_pull_at.map(|next| Row {
                next,
                pulls: s.fallback_pulls,
            });
            (s.user_id, row)
        })
        .collect()
}

/// Checks every user against the phase it was given: its due time has moved on by exactly
/// one interval per pull counted (so no due time was pulled twice, and none skipped), and
/// no due time older than `slack` before `at` is left unpulled. Returns the pulls counted.
fn assert_once_per_cycle(
    first: &HashMap<Uuid, Row>,
    now: &HashMap<Uuid, Option<Row>>,
    at: DateTime<Utc>,
    slack: chrono::Duration,
) -> i64 {
    let interval = chrono::Duration::seconds(INTERVAL_SECS);
    let mut pulls = 0;
    for (user, start) in first {
        let row = now[user].expect("still scheduled");
        let expected = start.next + interval * i32::try_from(row.pulls - start.pulls).unwrap();
        assert_eq!(
            row.next, expected,
            "user {user}: {start:?} then {row:?}: a due time pulled twice or skipped"
        );
        assert!(
            row.next > at - slack,
            "user {user} missed a cycle: due at {} and not pulled by {at}",
            row.next
        );
        pulls += row.pulls - start.pulls;
    }
    pulls
}

/// Waits until every user has a due time, and returns them.
async fn phases(db: &sea_orm::DatabaseConnection, users: &[Uuid]) -> HashMap<Uuid, Row> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = schedule(db, users).await;
        if rows.values().all(Option::is_some) && rows.len() == users.len() {
            return rows.into_iter().map(|(u, r)| (u, r.unwrap())).collect();
        }
        assert!(Instant::now() < deadline, "the users were never scheduled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until `cycles` intervals have passed since `since`.
async fn let_cycles_pass(since: Instant, cycles: u64) {
    let until = since + Duration::from_secs(INTERVAL_SECS as u64 * cycles);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn admin_get(service: &Service, path: &str) -> serde_json::Value {
    service.api.must(reqwest::Method::GET, path, ADMIN_TOKEN, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_user_is_pulled_once_per_cycle_even_when_an_instance_is_killed_holding_claims() {
    let dir = tempfile::tempdir().unwrap();
    let google = Google::start(dir.path()).await;
    let (database_url, test_db) = test_database().await;
    let postgres = database_url.starts_with("postgres");
    // As the service opens it: on SQLite in WAL mode (readers never block the writer).
    let db = slotsync::store::connect(&database_url)
        .await
        .expect("the database opens");
    slotsync::store::migrate(&db).await.expect("the schema is created");
    let ports = [free_port(), free_port()];
    google.register_client(&ports.map(callback_url)).await;
    let count = users(postgres);
    let users = seed_connections(&db, &google, "fleet", count).await;
    // Every Google call takes 20-60 ms, so a killed instance has pulls in flight.
    google.faults(serde_json::json!({"latency_ms": [20, 60]})).await;

    let settings = [
        ("SCHEDULE_FALLBACK_SYNC", "* * * * * *"),
        ("FALLBACK_INTERVAL_SECS", "10"),
        ("FALLBACK_CONCURRENCY", CONCURRENCY),
        // A dead instance's claims (twice this) run out within a cycle; long enough that
        // a pull on a loaded machine does not outlive its claim (a second listing).
        ("PULL_LEASE_SECS", "3"),
        ("USER_BREAKER_FAILURES", "1000"),
    ];
    let spec = |name: &str, port: u16| ServiceSpec::new(name, port, &database_url, &google.base_url()).with(&settings);
    let mut a = Service::start(spec("instance-a", ports[0]), dir.path()).await;
    let mut b = if postgres {
        Some(Service::start(spec("instance-b", ports[1]), dir.path()).await)
    } else {
        None
    };
    let first = phases(&db, &users).await;
    let started = Instant::now();
    let listed_before = google.stats().await.op_count("events.list", "200");
    let interval = chrono::Duration::seconds(INTERVAL_SECS);
    // A pull due is claimed within a tick (1 s) and takes well under a second more.
    let slack = chrono::Duration::seconds(4);

    // Two cycles with every instance up.
    let_cycles_pass(started, 2).await;
    let at = Utc::now();
    let pulls = assert_once_per_cycle(&first, &schedule(&db, &users).await, at, slack);
    eprintln!("fleet: {pulls} pulls in two cycles of {count} users");
    if let Some(b) = &b {
        let fleet = admin_get(&a, "/admin/instances").await;
        assert_eq!(fleet["instances"].as_array().unwrap().len(), 2, "{fleet}");
        assert_eq!(fleet["share_of"], 2, "{fleet}");
        let by = [
            a.api.metric("slotsync_pulls_total{mode=\"full\",result=\"ok\"}").await
                + a.api
                    .metric("slotsync_pulls_total{mode=\"incremental\",result=\"ok\"}")
                    .await,
            b.api.metric("slotsync_pulls_total{mode=\"full\",result=\"ok\"}").await
                + b.api
                    .metric("slotsync_pulls_total{mode=\"incremental\",result=\"ok\"}")
                    .await,
        ];
        eprintln!("fleet: pulled by A {} and by B {}", by[0], by[1]);
        assert!(by[0] > 0.0 && by[1] > 0.0, "both instances pull: {by:?}");
    }

    // Kill an instance mid-cycle, holding claims: the survivor (or the same instance,
    // started again) takes them once their lease runs out.
    let killed_at = Instant::now();
    match &mut b {
        Some(b) => b.kill(),
        None => {
            a.kill();
            a.restart().await;
        }
    }
    let_cycles_pass(killed_at, 3).await;
    let at = Utc::now();
    let rows = schedule(&db, &users).await;
    let pulls = assert_once_per_cycle(&first, &rows, at, slack);
    let listed = google.stats().await.op_count("events.list", "200") - listed_before;
    eprintln!(
        "fleet: {pulls} pulls counted, {listed} listings at Google in {:.1} s ({} intervals)",
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() / INTERVAL_SECS as f64
    );
    // A listing without a counted pull is one the killed instance made before it died
    // (or one in flight now): at most one per place in its pipeline, and one per place here.
    let in_flight = 2 * CONCURRENCY.parse::<i64>().unwrap();
    assert!(
        (pulls..=pulls + in_flight).contains(&(listed as i64)),
        "{listed} listings for {pulls} pulls"
    );
    let cycles =
        (Utc::now() - first.values().map(|r| r.next).min().unwrap()).num_milliseconds() / interval.num_milliseconds();
    assert!(
        pulls >= (cycles - 1) * count as i64,
        "{pulls} pulls in {cycles} cycles of {count} users"
    );

    // The survivor takes the whole quota once the dead instance's heartbeat is stale.
    if postgres {
        wait_until(
            "the survivor takes the whole quota",
            Duration::from_secs(60),
            || async { admin_get(&a, "/admin/instances").await["share_of"] == 1 },
        )
        .await;
    }
    let jobs = admin_get(&a, "/admin/jobs").await;
    let fallback = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "fallback_sync")
        .unwrap()
        .clone();
    assert!(fallback["due"].as_u64().is_some(), "{fallback}");
    assert!(fallback["oldest_overdue_secs"].as_f64().unwrap() < 5.0, "{fallback}");
    drop(b);
    a.terminate();
    a.wait_exit(Duration::from_secs(20)).await;
    db.close().await.ok();
    drop(test_db);
}
