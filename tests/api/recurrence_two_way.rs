//! Recurring slots both ways, app + emulator over HTTP (issue 15): occurrences changed in
//! Google become exceptions (never slots), exceptions made through the API reach Google's
//! instances, a "this and following" split keeps both parts, a series made in Google is
//! imported with its exceptions — and none of it is written back.

use std::time::Duration;

use chrono::{DateTime, Timelike};
use chrono_tz::Tz;
use google_calendar3::api::{Event, EventDateTime};
use serde_json::{json, Value};

use crate::helpers::{event_id_of, spawn_app_with_google, wait_until, ConnectedApp, TestApp};
use slotsync_testkit::TestUser;

const EMAIL: &str = "ada@example.com";
const BERLIN: Tz = chrono_tz::Europe::Berlin;

/// A weekly Monday series at 09:00 Berlin from 15 March 2027 (DST begins 28 March and
/// ends 31 October 2027).
fn weekly_berlin() -> Value {
    json!({
        "title": "Office hours",
        "start": "2027-03-15T09:00:00+01:00",
        "end": "2027-03-15T10:00:00+01:00",
        "timezone": "Europe/Berlin",
        "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO"],
    })
}

fn at(s: &str, zone: &str) -> EventDateTime {
    EventDateTime {
        date_time: Some(DateTime::parse_from_rfc3339(s).unwrap().to_utc()),
        time_zone: Some(zone.into()),
        ..Default::default()
    }
}

async fn occurrences(app: &TestApp, user: &TestUser, id: &str, query: &str) -> Vec<Value> {
    let page = app
        .get_json(user, &format!("/slots/{id}/occurrences?{query}&limit=500"))
        .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Google's expanded instances of `event_id` in `[from, to)`.
async fn instances(ctx: &ConnectedApp, event_id: &str, from: &str, to: &str) -> Vec<Event> {
    let hub = ctx.google.user_hub(EMAIL).await;
    let (_, list) = hub
        .events()
        .instances("primary", event_id)
        .time_min(from.parse().unwrap())
        .time_max(to.parse().unwrap())
        .max_results(2500)
        .doit()
        .await
        .unwrap();
    list.items.unwrap_or_default()
}

/// Pulls twice after clearing the emulator's counters, and checks that nothing was
/// written to Google and nothing changed here on the second pull.
async fn assert_no_write_back(ctx: &ConnectedApp, user: &TestUser) {
    let second = ctx.pull_twice_writing_nothing(user).await;
    assert_eq!(second["applied"], 0, "{second}");
    assert_eq!(second["imported"], 0, "{second}");
    assert_eq!(second["deleted"], 0, "{second}");
}

#[tokio::test]
async fn an_occurrence_moved_and_one_cancelled_in_google_become_exceptions_not_slots() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = ctx.app.create_slot(&user, &weekly_berlin()).await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.wait_until_pushed(id).await;
    let master = event_id_of(&slot);
    let hub = ctx.google.user_hub(EMAIL).await;
    // 22 March (winter time) moved and retitled; 29 March (summer time) cancelled.
    let moved = Event {
        summary: Some("Office hours (moved)".into()),
        start: Some(at("2027-03-23T14:00:00+01:00", "Europe/Berlin")),
        end: Some(at("2027-03-23T15:00:00+01:00", "Europe/Berlin")),
        ..Default::default()
    };
    hub.events()
        .patch(moved, "primary", &format!("{master}_20270322T080000Z"))
        .doit()
        .await
        .unwrap();
    hub.events()
        .delete("primary", &format!("{master}_20270329T070000Z"))
        .doit()
        .await
        .unwrap();
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["imported"], 0, "{report}");
    assert_eq!(
        ctx.app.list_slot_ids(&user, "").await,
        vec![id.to_owned()],
        "no extra slot"
    );

    let all = occurrences(&ctx.app, &user, id, "from=2027-03-15T00:00:00Z&to=2027-04-06T00:00:00Z").await;
    let seen: Vec<(&str, &str, &str, bool)> = all
        .iter()
        .map(|o| {
            (
                o["original_start"].as_str().unwrap(),
                o["start"].as_str().unwrap(),
                o["status"].as_str().unwrap(),
                o["modified"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "2027-03-15T09:00:00+01:00",
                "2027-03-15T09:00:00+01:00",
                "confirmed",
                false
            ),
            (
                "2027-03-22T09:00:00+01:00",
                "2027-03-23T14:00:00+01:00",
                "confirmed",
                true
            ),
            (
                "2027-03-29T09:00:00+02:00",
                "2027-03-29T09:00:00+02:00",
                "cancelled",
                true
            ),
            (
                "2027-04-05T09:00:00+02:00",
                "2027-04-05T09:00:00+02:00",
                "confirmed",
                false
            ),
        ]
    );
    assert_eq!(all[1]["title"], "Office hours (moved)");
    assert_eq!(all[1]["origin"], "google");
    assert_eq!(all[2]["origin"], "google");
    let feed = ctx.app.get_json(&user, "/changes").await;
    let kinds: Vec<&str> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"occurrence.updated") && kinds.contains(&"occurrence.cancelled"),
        "{kinds:?}"
    );
    assert_no_write_back(&ctx, &user).await;
}

#[tokio::test]
async fn occurrences_changed_through_the_api_reach_googles_instances_at_nine_berlin_across_dst() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = ctx.app.create_slot(&user, &weekly_berlin()).await;
    let id = slot["id"].as_str().unwrap();
    let moved = json!({
        "title": "Office hours (late)",
        "start": "2027-03-23T14:00:00+01:00",
        "end": "2027-03-23T15:00:00+01:00",
    });
    let resp = ctx
        .app
        .client
        .put(
            ctx.app
                .url(&format!("/slots/{id}/occurrences/2027-03-22T09:00:00%2B01:00")),
        )
        .bearer_auth(&user.token)
        .json(&moved)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = ctx
        .app
        .client
        .delete(
            ctx.app
                .url(&format!("/slots/{id}/occurrences/2027-11-01T09:00:00%2B01:00")),
        )
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    ctx.app.wait_until_pushed(id).await;
    let master = event_id_of(&slot);
    let items = instances(&ctx, &master, "2027-03-01T00:00:00Z", "2027-11-10T00:00:00Z").await;
    // 35 Mondays from 15 March to 8 November, one cancelled.
    assert_eq!(
        items.len(),
        34,
        "{:?}",
        items.iter().map(|i| i.id.clone()).collect::<Vec<_>>()
    );
    for item in &items {
        let start = item
            .start
            .as_ref()
            .and_then(|s| s.date_time)
            .unwrap()
            .with_timezone(&BERLIN);
        if item.id.as_deref() == Some(&format!("{master}_20270322T080000Z")) {
            assert_eq!(start.to_rfc3339(), "2027-03-23T14:00:00+01:00");
            assert_eq!(item.summary.as_deref(), Some("Office hours (late)"));
        } else {
            assert_eq!((start.hour(), start.minute()), (9, 0), "{:?}", item.id);
        }
    }
    assert!(
        items
            .iter()
            .all(|i| i.id.as_deref() != Some(&format!("{master}_20271101T080000Z"))),
        "the cancelled occurrence is gone"
    );
    assert_no_write_back(&ctx, &user).await;
    let all = occurrences(&ctx.app, &user, id, "from=2027-03-22T00:00:00Z&to=2027-03-24T00:00:00Z").await;
    assert_eq!(all[0]["origin"], "api", "our own change stays ours: {all:?}");

    // The series ends in June: the November cancellation goes, 22 March's change stays.
    let mut body = weekly_berlin();
    body["recurrence"] = json!(["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270701T000000Z"]);
    let resp = ctx.app.put_slot(&user, id, &body, None).await;
    assert_eq!(resp.status(), 200);
    let replaced: Value = resp.json().await.unwrap();
    assert_eq!(replaced["exceptions_dropped"], 1, "{replaced}");
    ctx.app.wait_until_pushed(id).await;
    let items = instances(&ctx, &master, "2027-03-01T00:00:00Z", "2027-11-10T00:00:00Z").await;
    assert_eq!(items.len(), 16, "15 March to 28 June");
    assert!(items
        .iter()
        .any(|i| i.summary.as_deref() == Some("Office hours (late)")));
    assert_no_write_back(&ctx, &user).await;
}

#[tokio::test]
async fn a_this_and_following_split_in_google_keeps_both_parts_as_linked_slots() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = ctx.app.create_slot(&user, &weekly_berlin()).await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.wait_until_pushed(id).await;
    let master = event_id_of(&slot);
    let hub = ctx.google.user_hub(EMAIL).await;
    // An occurrence cancelled after the split point, pulled before the split.
    hub.events()
        .delete("primary", &format!("{master}_20270426T070000Z"))
        .doit()
        .await
        .unwrap();
    ctx.app.pull(&user, "incremental").await;

    let split = ctx
        .app
        .client
        .post(format!(
            "{}/_emulator/calendars/{EMAIL}/events/{master}/split",
            ctx.google.base_url().trim_end_matches('/')
        ))
        .json(&json!({"original_start": "2027-04-12T09:00:00+02:00", "changes": {"location": "Room 9"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(split.status(), 200, "{:?}", split.text().await);
    ctx.app.pull(&user, "incremental").await;

    let ids = ctx.app.list_slot_ids(&user, "").await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    let second = ids.iter().find(|s| s.as_str() != id).unwrap();
    let second_slot = ctx.app.slot(&user, second).await;
    assert_eq!(second_slot["series_of"], id, "{second_slot}");
    assert_eq!(second_slot["location"], "Room 9");
    assert_eq!(second_slot["start"], "2027-04-12T09:00:00+02:00");
    let first_slot = ctx.app.slot(&user, id).await;
    assert!(
        first_slot["recurrence"][0].as_str().unwrap().contains("UNTIL="),
        "{first_slot}"
    );

    // Every Monday from 15 March to 31 May once, across both slots.
    let window = "from=2027-03-15T00:00:00Z&to=2027-06-01T00:00:00Z";
    let mut all = occurrences(&ctx.app, &user, id, window).await;
    let first_count = all.len();
    all.extend(occurrences(&ctx.app, &user, second, window).await);
    assert_eq!(first_count, 4, "15 March to 5 April stay with the first part");
    let mut starts: Vec<&str> = all.iter().map(|o| o["original_start"].as_str().unwrap()).collect();
    starts.dedup();
    assert_eq!(starts.len(), 12, "{starts:?}");
    assert_eq!(all.len(), 12);
    let cancelled: Vec<&str> = all
        .iter()
        .filter(|o| o["status"] == "cancelled")
        .map(|o| o["original_start"].as_str().unwrap())
        .collect();
    assert_eq!(cancelled, ["2027-04-26T09:00:00+02:00"]);
    assert_no_write_back(&ctx, &user).await;
}

#[tokio::test]
async fn a_series_made_in_google_is_imported_with_its_exceptions() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let hub = ctx.google.user_hub(EMAIL).await;
    let series = Event {
        summary: Some("Standup".into()),
        start: Some(at("2027-01-04T09:00:00+01:00", "Europe/Berlin")),
        end: Some(at("2027-01-04T09:15:00+01:00", "Europe/Berlin")),
        recurrence: Some(vec!["RRULE:FREQ=DAILY;COUNT=10".into()]),
        ..Default::default()
    };
    let (_, created) = hub.events().insert(series, "primary").doit().await.unwrap();
    let master = created.id.unwrap();
    let retitled = Event {
        summary: Some("Standup (demo day)".into()),
        ..Default::default()
    };
    hub.events()
        .patch(retitled, "primary", &format!("{master}_20270106T080000Z"))
        .doit()
        .await
        .unwrap();
    hub.events()
        .delete("primary", &format!("{master}_20270108T080000Z"))
        .doit()
        .await
        .unwrap();
    ctx.app.pull(&user, "incremental").await;
    wait_until("the series was imported", Duration::from_secs(10), || async {
        ctx.app.list_slot_ids(&user, "").await.len() == 1
    })
    .await;
    let id = ctx.app.list_slot_ids(&user, "").await.remove(0);
    let all = occurrences(&ctx.app, &user, &id, "").await;
    assert_eq!(all.len(), 10);
    assert_eq!(all[2]["title"], "Standup (demo day)");
    assert_eq!(all[2]["origin"], "google");
    assert_eq!(all[4]["status"], "cancelled");
    assert_eq!(all.iter().filter(|o| o["modified"] == true).count(), 2);
    assert_no_write_back(&ctx, &user).await;
}

#[tokio::test]
async fn all_day_kiritimati_and_st_johns_series_reach_google_in_their_zone() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let holiday = ctx
        .app
        .create_slot(
            &user,
            &json!({"title": "Holiday", "all_day": true, "start_date": "2027-01-05", "end_date": "2027-01-06",
                    "timezone": "Pacific/Kiritimati", "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"]}),
        )
        .await;
    let hid = holiday["id"].as_str().unwrap();
    let resp = ctx
        .app
        .client
        .delete(ctx.app.url(&format!("/slots/{hid}/occurrences/2027-01-12")))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    ctx.app.wait_until_pushed(hid).await;
    let items = instances(
        &ctx,
        &event_id_of(&holiday),
        "2026-12-01T00:00:00Z",
        "2027-03-01T00:00:00Z",
    )
    .await;
    let days: Vec<String> = items
        .iter()
        .map(|i| i.start.as_ref().and_then(|s| s.date).unwrap().to_string())
        .collect();
    assert_eq!(days, ["2027-01-05", "2027-01-19", "2027-01-26"]);

    for (zone, start, end) in [
        (
            "Pacific/Kiritimati",
            "2027-03-01T08:00:00+14:00",
            "2027-03-01T09:00:00+14:00",
        ),
        (
            "America/St_Johns",
            "2027-03-07T09:30:00-03:30",
            "2027-03-07T10:00:00-03:30",
        ),
    ] {
        let slot = ctx
            .app
            .create_slot(
                &user,
                &json!({"title": zone, "start": start, "end": end, "timezone": zone,
                        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"]}),
            )
            .await;
        ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
        let tz: Tz = zone.parse().unwrap();
        let items = instances(
            &ctx,
            &event_id_of(&slot),
            "2027-01-01T00:00:00Z",
            "2027-12-31T00:00:00Z",
        )
        .await;
        assert_eq!(items.len(), 4, "{zone}");
        let want = DateTime::parse_from_rfc3339(start).unwrap().with_timezone(&tz);
        for item in &items {
            let got = item
                .start
                .as_ref()
                .and_then(|s| s.date_time)
                .unwrap()
                .with_timezone(&tz);
            assert_eq!(
                (got.hour(), got.minute()),
                (want.hour(), want.minute()),
                "{zone}: {:?}",
                item.id
            );
        }
    }
    assert_no_write_back(&ctx, &user).await;
}

#[tokio::test]
async fn a_series_deleted_in_google_after_one_of_its_occurrences_changed_there_is_deleted_here() {
    // Seen by the convergence property: the series' deletion and its exceptions' tombstones
    // arrive in one listing; the exceptions made a new version of the slot, and the
    // deletion, settled at the end of the pull at the version it saw, no longer applied.
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = ctx.app.create_slot(&user, &weekly_berlin()).await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.wait_until_pushed(id).await;
    let master = event_id_of(&slot);
    let hub = ctx.google.user_hub(EMAIL).await;
    let retitled = Event {
        summary: Some("Office hours (moved)".into()),
        ..Default::default()
    };
    hub.events()
        .patch(retitled, "primary", &format!("{master}_20270322T080000Z"))
        .doit()
        .await
        .unwrap();
    hub.events()
        .delete("primary", &format!("{master}_20270329T070000Z"))
        .doit()
        .await
        .unwrap();
    hub.events().delete("primary", &master).doit().await.unwrap();

    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["deleted"], 1, "{report}");
    assert_eq!(
        ctx.app.get(&user, &format!("/slots/{id}")).await.status(),
        404,
        "the series is gone here too"
    );
    assert!(ctx.app.list_slot_ids(&user, "").await.is_empty());
    let again = ctx.app.pull(&user, "full").await;
    assert_eq!(again["imported"], 0, "{again}");
}
