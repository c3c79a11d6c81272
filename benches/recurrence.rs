//! Recurring slots: what a weekly series with many exceptions costs in Google calls, both
//! ways, and how fast its occurrences are listed.
//!
//! `cargo bench --bench recurrence` prints a markdown table. Environment:
//! - `BENCH_EXCEPTIONS`: exceptions made on each series (default 200);
//! - `BENCH_READS`: `GET /slots/{id}/occurrences` calls timed (default 200);
//! - `BENCH_DATABASE_URL`: PostgreSQL (a fresh database, dropped afterwards); SQLite in a
//!   temporary directory otherwise.
//!
//! Everything runs in this process: the emulator and the service (scheduler and channels
//! off, so every Google call counted is the one under measure). Phases:
//! 1. **push**: a weekly series (Mondays 09:00 Europe/Berlin, 260 occurrences) is created
//!    through the API, then `BENCH_EXCEPTIONS` of its occurrences are retitled one after
//!    another (`PUT /slots/{id}/occurrences/{original_start}`); Google calls from the
//!    `POST` until the slot is synced with every exception.
//! 2. **pull**: the same series made in Google (the master, then each instance patched),
//!    then one pull (`POST /sync/trigger`); Google calls from the trigger until the
//!    imported slot shows every exception.
//! 3. **occurrences over a year**: `GET /slots/{id}/occurrences` for the year holding the
//!    exceptions (52 occurrences, `limit=500`), `BENCH_READS` times one after another.

mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use common::{ms, Latencies};
use google_calendar3::api::{Event, EventDateTime};
use serde_json::{json, Value};
use slotsync_testkit::{RunningApp as Service, Stats, TestUser};

const EMAIL: &str = "recurrence-bench@example.com";
/// Occurrences of each series.
const COUNT: usize = 260;

fn main() -> anyhow::Result<()> {
    slotsync_testkit::init_logs();
    let exceptions = common::env_usize("BENCH_EXCEPTIONS", 200)?;
    let reads = common::env_usize("BENCH_READS", 200)?;
    anyhow::ensure!(exceptions <= COUNT, "BENCH_EXCEPTIONS is at most {COUNT}");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(exceptions, reads))
}

/// Google calls between two snapshots, by operation (`events.patch 200` …), and in all.
fn calls(before: &Stats, after: &Stats) -> (u64, String) {
    let mut parts = Vec::new();
    let mut total = 0;
    for (op, statuses) in &after.requests {
        if !op.starts_with("events.") && !op.starts_with("calendars.") {
            continue;
        }
        for (status, n) in statuses {
            let d = n - before.op_count(op, status);
            if d > 0 {
                total += d;
                parts.push(format!("{op} {status}: {d}"));
            }
        }
    }
    (total, parts.join(", "))
}

async fn get(http: &reqwest::Client, service: &Service, user: &TestUser, path: &str) -> anyhow::Result<Value> {
    let resp = http.get(service.url(path)).bearer_auth(&user.token).send().await?;
    ensure!(resp.status().is_success(), "GET {path}: {}", resp.status());
    Ok(resp.json().await?)
}

/// Every occurrence of the slot (five years, one page).
async fn occurrences(
    http: &reqwest::Client,
    service: &Service,
    user: &TestUser,
    id: &str,
) -> anyhow::Result<Vec<Value>> {
    let page = get(
        http,
        service,
        user,
        &format!("/slots/{id}/occurrences?from=2027-01-01T00:00:00Z&to=2031-12-31T00:00:00Z&limit=500"),
    )
    .await?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

async fn run(exceptions: usize, reads: usize) -> anyhow::Result<()> {
    let common::OneUser {
        google,
        service,
        user,
        backend,
        db: _db,
    } = common::one_user(EMAIL).await?;
    let http = reqwest::Client::new();
    let rule = format!("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT={COUNT}");

    // Phase 1: push.
    let before = google.stats().await;
    let push_started = Instant::now();
    let body = json!({ "title": "Office hours", "start": "2027-01-04T09:00:00+01:00",
                       "end": "2027-01-04T10:00:00+01:00", "timezone": "Europe/Berlin",
                       "recurrence": [rule] });
    let resp = http
        .post(service.url("/slots"))
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await?;
    ensure!(resp.status() == 201, "POST /slots: {}", resp.status());
    let slot: Value = resp.json().await?;
    let id = slot["id"].as_str().context("the slot's id")?.to_owned();
    let all = occurrences(&http, &service, &user, &id).await?;
    ensure!(all.len() == COUNT, "{} occurrences listed, {COUNT} expected", all.len());
    for (i, occurrence) in all.iter().take(exceptions).enumerate() {
        let original = occurrence["original_start"].as_str().context("original_start")?;
        let path = format!("/slots/{id}/occurrences/{}", urlencoding(original));
        let resp = http
            .put(service.url(&path))
            .bearer_auth(&user.token)
            .json(
                &json!({ "title": format!("Office hours #{i}"), "start": occurrence["start"],
                           "end": occurrence["end"] }),
            )
            .send()
            .await?;
        let status = resp.status();
        ensure!(
            status == 200,
            "PUT {path}: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let now = get(&http, &service, &user, &format!("/slots/{id}")).await?;
        if now["sync"]["state"] == "synced" {
            break;
        }
        ensure!(Instant::now() < deadline, "the series was not synced in 5 min: {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let push_wall = push_started.elapsed();
    let after_push = google.stats().await;
    let (push_calls, push_detail) = calls(&before, &after_push);
    let master = slot_event(&http, &service, &user, &id).await?;
    let hub = google.user_hub(EMAIL).await;
    let instances = hub
        .events()
        .instances("primary", &master)
        .max_results(2500)
        .doit()
        .await?
        .1
        .items
        .unwrap_or_default();
    let modified = instances
        .iter()
        .filter(|e| e.summary.as_deref().is_some_and(|s| s.starts_with("Office hours #")))
        .count();
    ensure!(
        modified == exceptions,
        "Google shows {modified} exceptions, {exceptions} expected"
    );

    // Phase 2: pull.
    let at = |t: &str| EventDateTime {
        date_time: Some(chrono::DateTime::parse_from_rfc3339(t).expect("a time").to_utc()),
        time_zone: Some("Europe/Berlin".into()),
        ..Default::default()
    };
    let made = Event {
        summary: Some("Made in Google".into()),
        start: Some(at("2027-01-05T09:00:00+01:00")),
        end: Some(at("2027-01-05T10:00:00+01:00")),
        recurrence: Some(vec![format!("RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT={COUNT}")]),
        ..Default::default()
    };
    let made = hub.events().insert(made, "primary").doit().await?.1;
    let made_id = made.id.context("the new event's id")?;
    let items = hub
        .events()
        .instances("primary", &made_id)
        .max_results(2500)
        .doit()
        .await?
        .1
        .items
        .unwrap_or_default();
    for (i, instance) in items.iter().take(exceptions).enumerate() {
        let patch = Event {
            summary: Some(format!("Made in Google #{i}")),
            ..Default::default()
        };
        let instance_id = instance.id.as_deref().context("an instance id")?;
        hub.events().patch(patch, "primary", instance_id).doit().await?;
    }
    let before_pull = google.stats().await;
    let pull_started = Instant::now();
    let resp = http
        .post(service.url("/sync/trigger"))
        .bearer_auth(&user.token)
        .send()
        .await?;
    ensure!(resp.status().is_success(), "trigger: {}", resp.status());
    let deadline = Instant::now() + Duration::from_secs(300);
    let imported = loop {
        let page = get(&http, &service, &user, "/slots?limit=500").await?;
        let found = page["items"]
            .as_array()
            .and_then(|items| items.iter().find(|s| s["title"] == "Made in Google"))
            .and_then(|s| s["id"].as_str())
            .map(str::to_owned);
        if let Some(found) = found {
            let occ = occurrences(&http, &service, &user, &found).await?;
            if occ.iter().filter(|o| o["modified"] == true).count() == exceptions {
                break found;
            }
        }
        ensure!(
            Instant::now() < deadline,
            "the series made in Google was not imported in 5 min"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let pull_wall = pull_started.elapsed();
    let after_pull = google.stats().await;
    let (pull_calls, pull_detail) = calls(&before_pull, &after_pull);
    let slots = get(&http, &service, &user, "/slots?limit=500").await?;
    let slot_count = slots["items"].as_array().map_or(0, Vec::len);
    ensure!(
        slot_count == 2,
        "{slot_count} slots: the import made one slot, not one per exception"
    );
    drop(imported);

    // Phase 3: a year of occurrences.
    let path = format!("/slots/{id}/occurrences?from=2027-01-01T00:00:00Z&to=2028-01-01T00:00:00Z&limit=500");
    let year = get(&http, &service, &user, &path).await?;
    let per_year = year["items"].as_array().map_or(0, Vec::len);
    let mut lat = Vec::with_capacity(reads);
    let reads_started = Instant::now();
    for _ in 0..reads {
        let t0 = Instant::now();
        get(&http, &service, &user, &path).await?;
        lat.push(ms(t0.elapsed()));
    }
    let reads_wall = reads_started.elapsed();
    let lat = Latencies::new(lat);

    println!(
        "recurrence benchmark: a weekly series of {COUNT} occurrences with {exceptions} exceptions, {backend}, {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    println!("| phase | Google calls | per exception | wall (ms) | detail |");
    println!("|---|---:|---:|---:|---|");
    let per = |n: u64| n as f64 / exceptions.max(1) as f64;
    println!(
        "| push: series created, then {exceptions} occurrences changed through the API | {push_calls} | {:.2} | {:.0} | {push_detail} |",
        per(push_calls),
        ms(push_wall)
    );
    println!(
        "| pull: the series and its {exceptions} exceptions made in Google, one pull | {pull_calls} | {:.3} | {:.0} | {pull_detail} |",
        per(pull_calls),
        ms(pull_wall)
    );
    println!();
    println!("| read | count | per second | p50 (ms) | p99 (ms) | max (ms) |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| `GET /slots/{{id}}/occurrences` over a year ({per_year} occurrences) | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
        lat.len(),
        lat.len() as f64 / reads_wall.as_secs_f64(),
        lat.p50(),
        lat.p99(),
        lat.max()
    );
    Ok(())
}

/// The Google event id of a slot.
async fn slot_event(http: &reqwest::Client, service: &Service, user: &TestUser, id: &str) -> anyhow::Result<String> {
    let slot = get(http, service, user, &format!("/slots/{id}")).await?;
    slot["sync"]["google_event_id"]
        .as_str()
        .map(str::to_owned)
        .context("the slot's event id")
}

/// Percent-encodes what a path segment cannot hold as is (`+` and `:` of an offset).
fn urlencoding(s: &str) -> String {
    s.replace('%', "%25").replace('+', "%2B").replace(':', "%3A")
}
