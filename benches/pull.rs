//! Pull: a full sync of a calendar of N events (default 10 000), against google-calendar3
//! alone paging through the same listing (the limit); then an incremental pull of 100
//! changes made in Google.
//!
//! `cargo bench --bench pull` prints a markdown table. Environment:
//! - `BENCH_EVENTS`: events in the calendar (default 10 000);
//! - `BENCH_CHANGES`: changes made in Google before the incremental pull (default 100:
//!   60 % edits, 20 % deletions, 20 % new events);
//! - `BENCH_DATABASE_URL`: a PostgreSQL URL under which a fresh database is created and
//!   dropped afterwards; SQLite in a temporary directory otherwise;
//! - `RUST_LOG`: turns the service's logs on (off by default).
//!
//! Set-up (not timed): the emulator runs in this process; a user is connected through the
//! OAuth flow (its first pull sees an empty calendar), the service is stopped, and the
//! user's Google calendar is filled with google-calendar3 inserts, as the Google user,
//! 32 at a time (the emulator has no bulk seeding path).
//!
//! Each measured step runs in a **child process** (this executable again): it builds the
//! service's state (`Application::build`, without serving) and runs one
//! `Puller::pull(user, mode)`, or pages through the listing with a bare google-calendar3
//! hub. Its peak memory is the child's `VmHWM` (resident-set high-water mark, from
//! `/proc/self/status`) after the step; the growth is that minus `VmRSS` just before it.
//! A child keeps the emulator, the seeding and earlier steps out of the figure, and a
//! fresh allocator cannot hide the step's peak in memory freed earlier.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use common::ms;
use futures::stream::{self, StreamExt};
use google_calendar3::api::{Event, EventDateTime};
use serde_json::{json, Value};
use slotsync::app::Application;
use slotsync::domain::UserId;
use slotsync::emulator::{Emulator, EmulatorConfig};
use slotsync::google::hub::{calendar_hub, Hub};
use slotsync::google::GoogleEndpoints;
use slotsync::sync::pull::PullMode;
use slotsync_testkit::{free_port, Google, RunningApp as Service};

/// The environment variable that makes this executable a child running one step.
const CHILD: &str = "SLOTSYNC_BENCH_PULL_STEP";
/// Google calls in flight while seeding and changing the calendar.
const SEED_CONCURRENCY: usize = 32;
/// The service's page size (`maxResults`), which the bare listing uses too.
const PAGE_SIZE: i32 = 2500;
const EMAIL: &str = "pull-bench@example.com";

/// A figure from `/proc/self/status` (e.g. `VmHWM`), in KiB.
fn status_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------
// The child: one step, reported as one JSON line on stdout.

async fn child_step(step: Value) -> anyhow::Result<Value> {
    let str_of = |k: &str| {
        step[k]
            .as_str()
            .with_context(|| format!("step field {k}"))
            .map(str::to_owned)
    };
    match str_of("role")?.as_str() {
        "pull" => {
            let mut settings = common::settings_with_google(&str_of("google")?, &str_of("database_url")?, 0);
            settings.public_base_url = None;
            let state = Application::build(settings).await?.state().clone();
            let user = UserId(str_of("user")?.parse()?);
            let mode = match str_of("mode")?.as_str() {
                "full" => PullMode::Full,
                _ => PullMode::Incremental,
            };
            let rss_before = status_kib("VmRSS");
            let started = Instant::now();
            let report = state.pulls.puller().pull(user, mode).await?;
            let took = started.elapsed();
            Ok(json!({
                "wall_ms": ms(took),
                "rss_before_kib": rss_before,
                "hwm_kib": status_kib("VmHWM"),
                "mode": report.mode.as_str(),
                "pages": report.pages,
                "events": report.events,
                "applied": report.applied,
                "imported": report.imported,
                "deleted": report.deleted,
                "echoes": report.echoes,
                "skipped": report.skipped,
                "conflicts": report.conflicts,
            }))
        }
        "bare" => {
            let endpoints = GoogleEndpoints::emulator(&str_of("google")?);
            let hub = calendar_hub(&endpoints, str_of("access_token")?);
            let time_min: DateTime<Utc> = str_of("time_min")?.parse()?;
            let rss_before = status_kib("VmRSS");
            let started = Instant::now();
            let (mut pages, mut events, mut page_token) = (0u32, 0usize, None::<String>);
            let sync_token = loop {
                let mut call = hub
                    .events()
                    .list("primary")
                    .show_deleted(true)
                    .single_events(false)
                    .max_results(PAGE_SIZE)
                    .time_min(time_min);
                if let Some(t) = &page_token {
                    call = call.page_token(t);
                }
                let (_, page) = call.doit().await?;
                pages += 1;
                events += page.items.map_or(0, |items| items.len());
                match page.next_page_token {
                    Some(next) => page_token = Some(next),
                    None => break page.next_sync_token,
                }
            };
            let took = started.elapsed();
            ensure!(sync_token.is_some(), "the last page carries a nextSyncToken");
            Ok(json!({
                "wall_ms": ms(took),
                "rss_before_kib": rss_before,
                "hwm_kib": status_kib("VmHWM"),
                "pages": pages,
                "events": events,
            }))
        }
        other => bail!("unknown step role {other}"),
    }
}

/// Runs `step` in a child process and returns what it reported.
async fn in_child(step: Value) -> anyhow::Result<Value> {
    let exe = std::env::current_exe()?;
    let out = tokio::process::Command::new(exe)
        .env(CHILD, step.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "the {} step failed ({}): {stdout}",
        step["role"],
        out.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("STEP "))
        .context("the child reported its step")?;
    Ok(serde_json::from_str(line)?)
}

// ---------------------------------------------------------------------------------------
// The parent: set-up, seeding, the steps, the changes, the report.

/// Event number `k` of the seeded calendar: timed (30 min, 90 min apart, from tomorrow)
/// in Europe/Paris, every tenth one all day.
fn seeded_event(k: usize, from: DateTime<Utc>) -> Event {
    let start = from + Span::minutes(90 * k as i64);
    let (start, end) = if k % 10 == 9 {
        let day = start.date_naive();
        (
            EventDateTime {
                date: Some(day),
                ..Default::default()
            },
            EventDateTime {
                date: day.succ_opt(),
                ..Default::default()
            },
        )
    } else {
        let at = |t: DateTime<Utc>| EventDateTime {
            date_time: Some(t),
            time_zone: Some("Europe/Paris".to_owned()),
            ..Default::default()
        };
        (at(start), at(start + Span::minutes(30)))
    };
    Event {
        summary: Some(format!("Seeded event {k}")),
        description: (k % 3 == 0).then(|| format!("Agenda of meeting {k}: numbers, plans, and a few words more.")),
        location: (k % 4 == 0).then(|| "Room 4, second floor".to_owned()),
        start: Some(start),
        end: Some(end),
        ..Default::default()
    }
}

/// Inserts `n` events into the user's primary calendar; returns their ids.
async fn seed(hub: &Arc<Hub>, n: usize, from: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
    stream::iter(0..n)
        .map(|k| {
            let hub = Arc::clone(hub);
            async move {
                let (_, event) = hub.events().insert(seeded_event(k, from), "primary").doit().await?;
                event.id.context("an inserted event has an id")
            }
        })
        .buffered(SEED_CONCURRENCY)
        .collect::<Vec<anyhow::Result<String>>>()
        .await
        .into_iter()
        .collect()
}

/// What the changes made in Google were.
#[derive(Default)]
struct Changes {
    edited: usize,
    deleted: usize,
    inserted: usize,
}

/// `n` changes in Google, spread over the calendar: 60 % edits (title), 20 % deletions,
/// 20 % new events.
async fn change(hub: &Arc<Hub>, ids: &[String], n: usize, from: DateTime<Utc>) -> anyhow::Result<Changes> {
    let deletions = n / 5;
    let inserts = n / 5;
    let edits = n - deletions - inserts;
    let stride = (ids.len() / (edits + deletions).max(1)).max(1);
    let targets: Vec<&String> = ids.iter().step_by(stride).take(edits + deletions).collect();
    ensure!(
        targets.len() == edits + deletions,
        "the calendar is too small for {n} changes"
    );
    let jobs = (0..n).map(|j| {
        let hub = Arc::clone(hub);
        let target = targets.get(j).map(|s| (*s).clone());
        async move {
            if j < edits {
                let patch = Event {
                    summary: Some(format!("Edited in Google {j}")),
                    ..Default::default()
                };
                hub.events()
                    .patch(patch, "primary", &target.context("a target")?)
                    .doit()
                    .await?;
            } else if j < edits + deletions {
                hub.events()
                    .delete("primary", &target.context("a target")?)
                    .doit()
                    .await?;
            } else {
                // New events after the seeded ones.
                hub.events()
                    .insert(seeded_event(ids.len() + j, from), "primary")
                    .doit()
                    .await?;
            }
            anyhow::Ok(())
        }
    });
    stream::iter(jobs)
        .buffer_unordered(SEED_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<()>>()?;
    Ok(Changes {
        edited: edits,
        deleted: deletions,
        inserted: inserts,
    })
}

/// One measured step.
struct Step {
    name: String,
    reported: Value,
    /// `events.list` requests the emulator answered during the step.
    lists: u64,
}

impl Step {
    fn wall_ms(&self) -> f64 {
        self.reported["wall_ms"].as_f64().unwrap_or(f64::NAN)
    }

    fn row(&self) -> String {
        let r = &self.reported;
        let n = |k: &str| r[k].as_u64().map_or("–".to_owned(), |v| v.to_string());
        let mib = |kib: Option<u64>| kib.map_or("–".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        let hwm = r["hwm_kib"].as_u64();
        let growth = hwm.zip(r["rss_before_kib"].as_u64()).map(|(h, b)| h.saturating_sub(b));
        let outcome = if r["mode"].is_string() {
            format!(
                "imported {}, applied {}, deleted {}, unchanged {}",
                n("imported"),
                n("applied"),
                n("deleted"),
                r["skipped"].as_u64().unwrap_or(0) + r["echoes"].as_u64().unwrap_or(0)
            )
        } else {
            "listed only".to_owned()
        };
        format!(
            "| {} | {:.0} | {} | {} | {} | {outcome} | {} | {} |",
            self.name,
            self.wall_ms(),
            self.lists,
            n("pages"),
            n("events"),
            mib(hwm),
            mib(growth),
        )
    }
}

struct Results {
    events: usize,
    seeding: Duration,
    changes: Changes,
    steps: Vec<Step>,
    database: &'static str,
}

async fn run(events: usize, changes: usize) -> anyhow::Result<Results> {
    let google = Emulator::start(EmulatorConfig::for_tests()).await?;
    let control = Google::at(&google.base_url());
    let (database_url, db) = common::bench_database().await;
    let database = db.describe();
    let result = async {
        let port = free_port();
        control.register_client(&[slotsync_testkit::callback_url(port)]).await;
        let settings = common::settings_with_google(&google.base_url(), &database_url, port);
        let mut service = Service::start(settings).await;
        let user = service.connected_user(EMAIL).await.user_id().0;
        service.stop().await;

        let hub = Arc::new(calendar_hub(
            &GoogleEndpoints::emulator(&google.base_url()),
            control.user_token(EMAIL).await,
        ));
        let from = (Utc::now() + Span::days(1)).duration_trunc(Span::hours(1))?;
        let seeding = Instant::now();
        let ids = seed(&hub, events, from).await?;
        let seeding = seeding.elapsed();

        let mut steps = Vec::new();
        let pull = |mode: &str| {
            json!({"role": "pull", "google": google.base_url(), "database_url": database_url,
                   "user": user.to_string(), "mode": mode})
        };
        let mut step = async |name: String, spec: Value| -> anyhow::Result<()> {
            control.clear_stats().await;
            let reported = in_child(spec).await?;
            let lists = control.stats().await.op_total("events.list");
            steps.push(Step { name, reported, lists });
            Ok(())
        };
        step(
            format!("slotsync full sync, first ({events} events imported)"),
            pull("full"),
        )
        .await?;
        let time_min = Utc::now() - Span::days(i64::from(common::settings(&database_url, 0).full_sync_window_days));
        step(
            "google-calendar3 alone, the same listing".to_owned(),
            json!({"role": "bare", "google": google.base_url(), "access_token": control.user_token(EMAIL).await,
                   "time_min": time_min.to_rfc3339()}),
        )
        .await?;
        step("slotsync full sync again (nothing changed)".to_owned(), pull("full")).await?;
        let made = change(&hub, &ids, changes, from).await?;
        step(
            format!("slotsync incremental pull ({changes} changes)"),
            pull("incremental"),
        )
        .await?;
        Ok(Results {
            events,
            seeding,
            changes: made,
            steps,
            database,
        })
    }
    .await;
    db.remove().await;
    google.shutdown().await;
    result
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Ok(step) = std::env::var(CHILD) {
        let step: Value = serde_json::from_str(&step).context("the step's description")?;
        let reported = runtime.block_on(child_step(step))?;
        println!("STEP {reported}");
        return Ok(());
    }
    // `cargo bench` passes `--bench`; there is one benchmark, so arguments are ignored.
    slotsync_testkit::init_logs();
    let events = common::env_usize("BENCH_EVENTS", 10_000)?;
    let changes = common::env_usize("BENCH_CHANGES", 100)?;
    let r = runtime.block_on(run(events, changes))?;
    report(&r);
    Ok(())
}

fn report(r: &Results) {
    println!();
    println!(
        "pull benchmark: a calendar of {} events (seeded in {:.0} ms), {}, {}",
        r.events,
        ms(r.seeding),
        r.database,
        common::machine()
    );
    println!();
    println!(
        "| step | wall (ms) | `events.list` calls | pages | events | outcome | peak RSS (MiB) | RSS growth (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    for step in &r.steps {
        println!("{}", step.row());
    }
    println!();
    if let [first, bare, ..] = r.steps.as_slice() {
        println!(
            "full sync / google-calendar3 listing alone: {:.1}× the time ({:.0} ms vs {:.0} ms)",
            first.wall_ms() / bare.wall_ms(),
            first.wall_ms(),
            bare.wall_ms()
        );
    }
    if let Some(incremental) = r.steps.last() {
        println!(
            "incremental pull: {} `events.list` call(s) (target 1: {}); changes made in Google: {} edited, {} \
             deleted, {} created",
            incremental.lists,
            if incremental.lists == 1 { "met" } else { "not met" },
            r.changes.edited,
            r.changes.deleted,
            r.changes.inserted
        );
    }
    println!(
        "peak RSS is the step's child process's VmHWM; growth is VmHWM minus VmRSS just before the step (the \
         service's state was already built)."
    );
}
