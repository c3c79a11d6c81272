//! The lifecycle property: random lifecycle steps (reconnects to the primary or the
//! dedicated calendar, account switches, disconnects with and without deleting events,
//! revocations, partial grants, the dedicated calendar deleted in Google) interleaved with
//! slot edits in the app and event edits in Google, under emulator faults. Once the faults
//! stop and the user connects again with a full grant:
//! - no live slot is lost (every slot neither deleted through the API nor deleted in Google
//!   is still live);
//! - every live slot is exactly once in the connected calendar, holding its content;
//! - no event the user made in Google is deleted (the user never deletes those slots here).
//!
//! CI runs `LIFECYCLE_CASES` cases (default 4); set it higher to search longer.

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{
    all_events, assert_each_slot_once, connect_as, connected_calendar, connection, live_events, live_slots, reconnect,
    rename, settle, tag, Consent,
};
use crate::helpers::{slot_body, spawn_app_with_google_and, ConnectedApp, TestUser};

const ACCOUNTS: [&str; 2] = ["ada@example.com", "bob@example.com"];

/// One step of a case.
#[derive(Debug, Clone)]
enum Step {
    /// The app creates a slot.
    Create { day: u8 },
    /// The app renames a slot it created.
    Rename { slot: usize, title: u8 },
    /// The app deletes a slot it created.
    Delete { slot: usize },
    /// The account owner renames a slot's event in the connected calendar.
    GoogleRename { slot: usize, title: u8 },
    /// The account owner deletes a slot's event in the connected calendar.
    GoogleDelete { slot: usize },
    /// The account owner creates an event of their own in their primary calendar.
    GoogleCreate { account: usize, day: u8 },
    /// The user connects again (to `dedicated` or `primary`, as `account`).
    Reconnect { dedicated: bool, account: usize },
    /// The user disconnects.
    Disconnect { delete_events: bool },
    /// The grant is revoked in the Google account.
    Revoke,
    /// The user connects again but unticks the calendar permission.
    PartialGrant { account: usize },
    /// The account owner deletes the connected calendar (when it is a dedicated one).
    DeleteCalendar,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1..28u8).prop_map(|day| Step::Create { day }),
        2 => (0..20usize, 0..9u8).prop_map(|(slot, title)| Step::Rename { slot, title }),
        1 => (0..20usize).prop_map(|slot| Step::Delete { slot }),
        2 => (0..20usize, 0..9u8).prop_map(|(slot, title)| Step::GoogleRename { slot, title }),
        1 => (0..20usize).prop_map(|slot| Step::GoogleDelete { slot }),
        1 => (0..2usize, 1..28u8).prop_map(|(account, day)| Step::GoogleCreate { account, day }),
        3 => (any::<bool>(), 0..2usize).prop_map(|(dedicated, account)| Step::Reconnect { dedicated, account }),
        1 => any::<bool>().prop_map(|delete_events| Step::Disconnect { delete_events }),
        1 => Just(Step::Revoke),
        1 => (0..2usize).prop_map(|account| Step::PartialGrant { account }),
        1 => Just(Step::DeleteCalendar),
    ]
}

/// What the run knows: the slots the app created, which must stay, and the user's own
/// events, which must never be deleted.
#[derive(Default)]
struct Model {
    /// Slots created through the API, in order.
    created: Vec<String>,
    /// Of those, deleted through the API or whose event was deleted in Google.
    gone: HashSet<String>,
    /// Events the account owners made in Google: (calendar, event id).
    own: Vec<(String, String)>,
}

impl Model {
    fn pick(&self, i: usize) -> Option<&String> {
        let live: Vec<&String> = self.created.iter().filter(|s| !self.gone.contains(*s)).collect();
        (!live.is_empty()).then(|| live[i % live.len()])
    }
}

async fn revoke(ctx: &ConnectedApp, email: &str) {
    ctx.google.revoke_tokens(email).await;
}

/// The connected calendar and the account owning it, if the connection is active.
async fn active_calendar(ctx: &ConnectedApp, user: &TestUser) -> Option<(String, String)> {
    let c = connection(ctx, user).await;
    if c["status"] != "active" {
        return None;
    }
    Some((
        c["google_email"].as_str()?.to_owned(),
        connected_calendar(ctx, user).await,
    ))
}

async fn run(ctx: &ConnectedApp, user: &TestUser, model: &mut Model, step: &Step) {
    match step {
        Step::Create { day } => {
            let body = slot_body(
                &format!("slot d{day}"),
                &format!("2026-12-{day:02}T09:00:00Z"),
                &format!("2026-12-{day:02}T10:00:00Z"),
            );
            let slot = ctx.app.create_slot(user, &body).await;
            model.created.push(slot["id"].as_str().unwrap().to_owned());
        }
        Step::Rename { slot, title } => {
            let Some(id) = model.pick(*slot).cloned() else { return };
            if ctx.app.get(user, &format!("/slots/{id}")).await.status() != 200 {
                return; // deleted by a Google deletion the model could not be sure of
            }
            rename(ctx, user, &id, &format!("app {title}")).await;
        }
        Step::Delete { slot } => {
            let Some(id) = model.pick(*slot).cloned() else { return };
            ctx.app.delete_slot(user, &id).await;
            model.gone.insert(id);
        }
        Step::GoogleRename { slot, title } => {
            let Some((email, calendar, event)) = google_event(ctx, user, model, *slot).await else {
                return;
            };
            let patch = google_calendar3::api::Event {
                summary: Some(format!("google {title}")),
                ..Default::default()
            };
            // Faults may refuse it: then it simply did not happen.
            let _ = ctx
                .google
                .user_hub(&email)
                .await
                .events()
                .patch(patch, &calendar, &event)
                .doit()
                .await;
        }
        Step::GoogleDelete { slot } => {
            let Some((email, calendar, event)) = google_event(ctx, user, model, *slot).await else {
                return;
            };
            let _ = ctx
                .google
                .user_hub(&email)
                .await
                .events()
                .delete(&calendar, &event)
                .doit()
                .await;
            // Whatever the answer said (a lost response deletes too): is it gone?
            let still = live_events(ctx, &calendar)
                .await
                .iter()
                .any(|e| e["id"] == event.as_str());
            if !still {
                // Deleted in Google: the slot may go (or stay, if edited here meanwhile).
                if let Some(id) = model.pick(*slot).cloned() {
                    model.gone.insert(id);
                }
            }
        }
        Step::GoogleCreate { account, day } => {
            let email = ACCOUNTS[*account];
            let event = google_calendar3::api::Event {
                summary: Some(format!("own d{day}")),
                start: Some(at(*day, 14)),
                end: Some(at(*day, 15)),
                ..Default::default()
            };
            if let Ok((_, created)) = ctx
                .google
                .user_hub(email)
                .await
                .events()
                .insert(event, email)
                .doit()
                .await
            {
                model.own.push((email.to_owned(), created.id.unwrap()));
            }
        }
        Step::Reconnect { dedicated, account } => {
            let calendar = if *dedicated { "dedicated" } else { "primary" };
            let consent = Consent {
                account: Some(ACCOUNTS[*account]),
                ..Consent::default()
            };
            let (status, body) = connect_as(ctx, user, calendar, consent).await;
            // A fault at Google may refuse the connection; the previous one stays.
            assert!(status == 200 || status >= 400, "{status} {body}");
        }
        Step::Disconnect { delete_events } => {
            let path = format!("/auth/google/connection?delete_events={delete_events}");
            let resp = ctx.app.user_send(user, reqwest::Method::DELETE, &path).await;
            assert!([200, 404].contains(&resp.status().as_u16()), "{}", resp.status());
        }
        Step::Revoke => {
            let c = connection(ctx, user).await;
            if let Some(email) = c["google_email"].as_str() {
                revoke(ctx, email).await;
            }
        }
        Step::PartialGrant { account } => {
            // Google merges earlier grants (include_granted_scopes): only a grant revoked
            // first can be partial.
            revoke(ctx, ACCOUNTS[*account]).await;
            let consent = Consent {
                account: Some(ACCOUNTS[*account]),
                scopes: Some(&["openid", "email"]),
            };
            connect_as(ctx, user, "primary", consent).await;
        }
        Step::DeleteCalendar => {
            let Some((email, calendar)) = active_calendar(ctx, user).await else {
                return;
            };
            if calendar != email {
                let _ = ctx
                    .google
                    .user_hub(&email)
                    .await
                    .calendars()
                    .delete(&calendar)
                    .doit()
                    .await;
            }
        }
    }
}

fn at(day: u8, hour: u8) -> google_calendar3::api::EventDateTime {
    google_calendar3::api::EventDateTime {
        date_time: Some(format!("2026-12-{day:02}T{hour:02}:00:00Z").parse().unwrap()),
        time_zone: Some("UTC".into()),
        ..Default::default()
    }
}

/// The event of the `slot`-th live slot in the connected calendar, with its owner.
async fn google_event(
    ctx: &ConnectedApp,
    user: &TestUser,
    model: &Model,
    slot: usize,
) -> Option<(String, String, String)> {
    let id = model.pick(slot)?;
    let (email, calendar) = active_calendar(ctx, user).await?;
    let event = live_events(ctx, &calendar)
        .await
        .into_iter()
        .find(|e| tag(e) == Some(id.as_str()))?;
    Some((email, calendar, event["id"].as_str()?.to_owned()))
}

async fn run_case(steps: Vec<Step>, error_rate: f64) -> Result<(), TestCaseError> {
    let ctx = spawn_app_with_google_and(|s| {
        s.slot_breaker_alternations = 1_000;
        s.user_breaker_cooldown_secs = 1;
    })
    .await;
    let user = ctx.app.create_user(ACCOUNTS[0]).await;
    reconnect(&ctx, &user, "primary", Consent::default()).await;
    settle(&ctx, &user).await;
    let mut model = Model::default();
    ctx.google
        .faults(json!({ "ops": { "*": { "503": error_rate, "lost_response": error_rate / 2.0 } } }))
        .await;
    for step in &steps {
        run(&ctx, &user, &mut model, step).await;
    }

    // The faults stop; the user connects again with everything granted (to whichever
    // account and calendar the last connection named) and everything settles.
    ctx.google.faults(Value::Null).await;
    let last = connection(&ctx, &user).await;
    let account = last["google_email"].as_str().unwrap_or(ACCOUNTS[0]).to_owned();
    wait_for_disconnects(&ctx, &user).await;
    let body = reconnect(
        &ctx,
        &user,
        "primary",
        Consent {
            account: Some(&account),
            ..Consent::default()
        },
    )
    .await;
    prop_assert_eq!(&body["status"], "active", "{}", body);
    ctx.app.state.pusher.drain().await.unwrap();
    ctx.app.pull(&user, "full").await;
    settle(&ctx, &user).await;
    let held: Vec<Value> = ctx
        .app
        .get_json(&user, "/sync/held-deletions")
        .await
        .as_array()
        .cloned()
        .unwrap();
    prop_assert!(held.is_empty(), "no mass deletion in these cases: {:?}", held);

    // No live slot lost.
    let live: HashSet<String> = live_slots(&ctx, &user)
        .await
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    for id in model.created.iter().filter(|id| !model.gone.contains(*id)) {
        prop_assert!(live.contains(id), "slot {} was lost", id);
    }
    // Every live slot exactly once in the connected calendar.
    let calendar = connected_calendar(&ctx, &user).await;
    assert_each_slot_once(&ctx, &user, &calendar).await;
    // The user's own events are all still there.
    for (calendar, event) in &model.own {
        let events = all_events(&ctx, calendar).await;
        let e = events.iter().find(|e| e["id"] == event.as_str());
        prop_assert!(
            e.is_some_and(|e| e["status"] != "cancelled"),
            "the user's event {} in {} was deleted: {:?}",
            event,
            calendar,
            e
        );
    }
    Ok(())
}

/// Waits until no disconnect is deleting events any more.
async fn wait_for_disconnects(ctx: &ConnectedApp, user: &TestUser) {
    crate::helpers::wait_until(
        "the disconnect's deletion ends",
        std::time::Duration::from_secs(30),
        || async { connection(ctx, user).await["status"] != "disconnecting" },
    )
    .await;
}

fn cases() -> u32 {
    std::env::var("LIFECYCLE_CASES")
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

    #[test]
    fn lifecycle_steps_under_faults_lose_no_slot_duplicate_no_event_and_spare_the_users_own(
        steps in proptest::collection::vec(step(), 4..16),
        error_rate in 0.0..0.15f64,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(run_case(steps, error_rate))?;
    }
}
