//! Recurring slots through the API (issue 15): series, their occurrences, one occurrence
//! changed or cancelled, series edits, and the master pushed to Google with its rule.

use std::time::Duration;

use chrono::{DateTime, Timelike};
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::helpers::{assert_error, event_id_of, spawn_app, spawn_app_with_google, wait_until, TestApp};
use slotsync_testkit::TestUser;

const WEEKLY_MONDAY: &str = "RRULE:FREQ=WEEKLY;BYDAY=MO";

fn weekly_berlin() -> Value {
    json!({
        "title": "Office hours",
        "start": "2026-03-16T09:00:00+01:00",
        "end": "2026-03-16T10:00:00+01:00",
        "timezone": "Europe/Berlin",
        "recurrence": [WEEKLY_MONDAY],
    })
}

async fn occurrences(app: &TestApp, user: &TestUser, id: &str, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/slots/{id}/occurrences?{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let resp = app.get(user, &path).await;
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

async fn send(
    app: &TestApp,
    user: &TestUser,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(&user.token);
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(v) = if_match {
        req = req.header("If-Match", v);
    }
    req.send().await.unwrap()
}

fn local_time(value: &Value, zone: Tz) -> String {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&zone)
        .format("%H:%M")
        .to_string()
}

#[tokio::test]
async fn a_weekly_berlin_series_stays_at_nine_local_across_both_dst_changes() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let slot = app.create_slot(&user, &weekly_berlin()).await;
    assert_eq!(slot["recurrence"], json!([WEEKLY_MONDAY]));
    let id = slot["id"].as_str().unwrap();
    let all = occurrences(
        &app,
        &user,
        id,
        "from=2026-03-01T00:00:00Z&to=2026-11-10T00:00:00Z&limit=7",
    )
    .await;
    assert_eq!(all.len(), 35, "every Monday from 16 March to 9 November");
    for o in &all {
        assert_eq!(local_time(&o["start"], chrono_tz::Europe::Berlin), "09:00", "{o}");
        assert_eq!(local_time(&o["end"], chrono_tz::Europe::Berlin), "10:00", "{o}");
        assert_eq!(o["status"], "confirmed");
        assert_eq!(o["modified"], false);
        assert_eq!(o["title"], "Office hours");
    }
    // The UTC instant moves with the clocks.
    assert_eq!(all[1]["original_start"], "2026-03-23T09:00:00+01:00");
    assert_eq!(all[2]["original_start"], "2026-03-30T09:00:00+02:00");
    assert_eq!(all[33]["original_start"], "2026-11-02T09:00:00+01:00");

    // GET /slots keeps a series when any occurrence overlaps the window.
    let in_summer = app
        .list_slot_ids(&user, "from=2026-08-03T07:30:00Z&to=2026-08-03T08:00:00Z")
        .await;
    assert_eq!(in_summer, vec![id.to_owned()]);
    let on_a_tuesday = app
        .list_slot_ids(&user, "from=2026-08-04T00:00:00Z&to=2026-08-05T00:00:00Z")
        .await;
    assert!(on_a_tuesday.is_empty(), "{on_a_tuesday:?}");
}

#[tokio::test]
async fn bad_recurrence_lines_are_refused_naming_recurrence_and_nothing_is_stored() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    for lines in [
        json!(["RRULE:FREQ=HOURLY"]),
        json!(["DTSTART:20260316T080000Z", WEEKLY_MONDAY]),
        json!(["RRULE:FREQ=SOMETIMES"]),
        json!(["EXDATE:20260323T080000Z"]),
        json!(["RRULE:FREQ=DAILY;UNTIL=20260101T000000Z"]),
        json!(vec![WEEKLY_MONDAY; 11]),
    ] {
        let mut body = weekly_berlin();
        body["recurrence"] = lines.clone();
        let err = assert_error(app.post_slot(&user, &body).await, 400, "invalid_field").await;
        assert!(
            err["field"].as_str().unwrap().starts_with("recurrence"),
            "{lines} → {err}"
        );
    }
    assert!(app.list_slot_ids(&user, "").await.is_empty());
    // A slot that does not repeat has one occurrence, and none to change.
    let single = app
        .create_slot(
            &user,
            &json!({"title": "once", "start": "2026-03-16T09:00:00Z", "end": "2026-03-16T10:00:00Z"}),
        )
        .await;
    let id = single["id"].as_str().unwrap();
    assert!(single.get("recurrence").is_none(), "{single}");
    assert_eq!(occurrences(&app, &user, id, "").await.len(), 1);
    let resp = send(
        &app,
        &user,
        reqwest::Method::DELETE,
        &format!("/slots/{id}/occurrences/2026-03-16T09:00:00Z"),
        None,
        None,
    )
    .await;
    let err = assert_error(resp, 404, "not_found").await;
    assert!(err["message"].as_str().unwrap().contains("does not repeat"), "{err}");
}

#[tokio::test]
async fn one_occurrence_is_moved_and_another_cancelled_through_the_api() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let slot = app.create_slot(&user, &weekly_berlin()).await;
    let id = slot["id"].as_str().unwrap();
    let moved_path = format!("/slots/{id}/occurrences/2026-03-30T09:00:00+02:00");
    let moved = json!({
        "title": "Office hours (late)",
        "start": "2026-03-31T14:00:00+02:00",
        "end": "2026-03-31T15:30:00+02:00",
        "location": "Room 2",
    });
    // A stale version is refused and nothing changes.
    let resp = send(
        &app,
        &user,
        reqwest::Method::PUT,
        &moved_path,
        Some(&moved),
        Some("\"7\""),
    )
    .await;
    assert_error(resp, 412, "version_mismatch").await;
    let resp = send(
        &app,
        &user,
        reqwest::Method::PUT,
        &moved_path,
        Some(&moved),
        Some("\"1\""),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "\"2\"");
    let shown: Value = resp.json().await.unwrap();
    assert_eq!(shown["modified"], true);
    assert_eq!(shown["origin"], "api");
    assert_eq!(shown["start"], "2026-03-31T14:00:00+02:00");

    // Cancel the next one, given in UTC basic form.
    let resp = send(
        &app,
        &user,
        reqwest::Method::DELETE,
        &format!("/slots/{id}/occurrences/20260406T070000Z"),
        None,
        Some("\"2\""),
    )
    .await;
    assert_eq!(resp.status(), 204);
    // An occurrence the series does not have is named in the 404.
    let resp = send(
        &app,
        &user,
        reqwest::Method::DELETE,
        &format!("/slots/{id}/occurrences/2026-04-07T09:00:00+02:00"),
        None,
        None,
    )
    .await;
    let err = assert_error(resp, 404, "not_found").await;
    assert!(
        err["message"].as_str().unwrap().contains("2026-04-07T09:00:00+02:00"),
        "{err}"
    );
    assert_eq!(err["field"], "original_start");
    let resp = send(
        &app,
        &user,
        reqwest::Method::DELETE,
        &format!("/slots/{id}/occurrences/soon"),
        None,
        None,
    )
    .await;
    assert_error(resp, 400, "invalid_field").await;

    let all = occurrences(&app, &user, id, "from=2026-03-29T00:00:00Z&to=2026-04-14T00:00:00Z").await;
    let summary: Vec<(String, String, bool)> = all
        .iter()
        .map(|o| {
            (
                o["start"].as_str().unwrap().to_owned(),
                o["status"].as_str().unwrap().to_owned(),
                o["modified"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("2026-03-31T14:00:00+02:00".to_owned(), "confirmed".to_owned(), true),
            ("2026-04-06T09:00:00+02:00".to_owned(), "cancelled".to_owned(), true),
            ("2026-04-13T09:00:00+02:00".to_owned(), "confirmed".to_owned(), false),
        ]
    );
    assert_eq!(all[0]["original_start"], "2026-03-30T09:00:00+02:00");
    assert_eq!(all[0]["location"], "Room 2");

    // The feed carries both, with the slot and the occurrence.
    let feed = app.get_json(&user, "/changes").await;
    let kinds: Vec<&str> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["slot.created", "occurrence.updated", "occurrence.cancelled"]);
    let cancelled = &feed["changes"][2];
    assert_eq!(cancelled["slot"]["version"], 3);
    assert_eq!(cancelled["detail"]["occurrence"]["status"], "cancelled");
    assert_eq!(
        cancelled["detail"]["occurrence"]["original_start"],
        "2026-04-06T09:00:00+02:00"
    );
}

#[tokio::test]
async fn a_series_edit_drops_the_exceptions_off_its_new_occurrences_and_says_how_many() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let slot = app.create_slot(&user, &weekly_berlin()).await;
    let id = slot["id"].as_str().unwrap();
    for day in ["2026-03-23", "2026-04-13"] {
        let resp = send(
            &app,
            &user,
            reqwest::Method::DELETE,
            &format!("/slots/{id}/occurrences/{day}T09:00:00%2B01:00"),
            None,
            None,
        )
        .await;
        // 13 April is summer time: the same local hour is another instant.
        if day == "2026-04-13" {
            assert_eq!(resp.status(), 404);
            let resp = send(
                &app,
                &user,
                reqwest::Method::DELETE,
                &format!("/slots/{id}/occurrences/{day}T09:00:00%2B02:00"),
                None,
                None,
            )
            .await;
            assert_eq!(resp.status(), 204);
        } else {
            assert_eq!(resp.status(), 204);
        }
    }
    // Ending the series on 1 April keeps 23 March's exception and drops 13 April's.
    let mut body = weekly_berlin();
    body["recurrence"] = json!(["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20260401T000000Z"]);
    let resp = app.put_slot(&user, id, &body, None).await;
    assert_eq!(resp.status(), 200);
    let replaced: Value = resp.json().await.unwrap();
    assert_eq!(replaced["exceptions_dropped"], 1, "{replaced}");
    let all = occurrences(&app, &user, id, "from=2026-03-01T00:00:00Z&to=2026-06-01T00:00:00Z").await;
    let statuses: Vec<&str> = all.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["confirmed", "cancelled", "confirmed"]);
    // No longer repeating: every exception goes.
    body.as_object_mut().unwrap().remove("recurrence");
    let replaced: Value = app.put_slot(&user, id, &body, None).await.json().await.unwrap();
    assert_eq!(replaced["exceptions_dropped"], 1, "{replaced}");
    assert!(replaced.get("recurrence").is_none());
}

#[tokio::test]
async fn all_day_kiritimati_and_st_johns_series_expand_in_their_zone() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let holiday = app
        .create_slot(
            &user,
            &json!({"title": "Holiday", "all_day": true, "start_date": "2026-12-24", "end_date": "2026-12-26",
                    "timezone": "Pacific/Kiritimati", "recurrence": ["RRULE:FREQ=YEARLY;COUNT=3"]}),
        )
        .await;
    let id = holiday["id"].as_str().unwrap();
    let all = occurrences(&app, &user, id, "from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z").await;
    let days: Vec<(&str, &str)> = all
        .iter()
        .map(|o| (o["start_date"].as_str().unwrap(), o["original_start"].as_str().unwrap()))
        .collect();
    assert_eq!(
        days,
        [
            ("2026-12-24", "2026-12-24"),
            ("2027-12-24", "2027-12-24"),
            ("2028-12-24", "2028-12-24")
        ]
    );
    // Local midnight in Kiritimati (UTC+14).
    assert_eq!(all[1]["start"], "2027-12-24T00:00:00+14:00");
    let resp = send(
        &app,
        &user,
        reqwest::Method::DELETE,
        &format!("/slots/{id}/occurrences/2027-12-24"),
        None,
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);

    for (zone, start, end) in [
        (
            "Pacific/Kiritimati",
            "2026-12-31T08:00:00+14:00",
            "2026-12-31T09:00:00+14:00",
        ),
        (
            "America/St_Johns",
            "2026-03-01T09:30:00-03:30",
            "2026-03-01T10:00:00-03:30",
        ),
    ] {
        let slot = app
            .create_slot(
                &user,
                &json!({"title": zone, "start": start, "end": end, "timezone": zone,
                        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"]}),
            )
            .await;
        let tz: Tz = zone.parse().unwrap();
        let all = occurrences(&app, &user, slot["id"].as_str().unwrap(), "").await;
        assert_eq!(all.len(), 4, "{zone}");
        let first = local_time(&json!(start), tz);
        for o in &all {
            assert_eq!(local_time(&o["start"], tz), first, "{zone}: {o}");
        }
    }
}

#[tokio::test]
async fn a_series_is_pushed_with_its_rule_and_google_expands_it_at_nine_berlin() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user("ada@example.com").await;
    let slot = ctx.app.create_slot(&user, &weekly_berlin()).await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.wait_until_pushed(id).await;
    let hub = ctx.google.user_hub("ada@example.com").await;
    let (_, master) = hub.events().get("primary", &event_id_of(&slot)).doit().await.unwrap();
    assert_eq!(master.recurrence, Some(vec![WEEKLY_MONDAY.to_owned()]));
    assert_eq!(
        master.start.as_ref().and_then(|s| s.time_zone.as_deref()),
        Some("Europe/Berlin")
    );
    let (_, expanded) = hub
        .events()
        .list("primary")
        .single_events(true)
        .time_min("2026-03-01T00:00:00Z".parse().unwrap())
        .time_max("2026-11-10T00:00:00Z".parse().unwrap())
        .max_results(2500)
        .doit()
        .await
        .unwrap();
    let items = expanded.items.unwrap_or_default();
    assert_eq!(items.len(), 35, "every Monday at Google too");
    for item in &items {
        let start = item.start.as_ref().and_then(|s| s.date_time).unwrap();
        assert_eq!(
            start.with_timezone(&chrono_tz::Europe::Berlin).hour(),
            9,
            "{:?}",
            item.id
        );
    }
    // The pull that follows sees our own write: no write-back.
    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["applied"], 0, "{report}");
    assert_eq!(report["imported"], 0, "{report}");
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_total("events.patch"), 0, "{stats}");
    assert_eq!(stats.op_count("events.insert", "200"), 1, "{stats}");
}

#[tokio::test]
async fn a_series_made_in_google_is_imported_as_one_recurring_slot() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user("ada@example.com").await;
    let hub = ctx.google.user_hub("ada@example.com").await;
    let at = |s: &str| google_calendar3::api::EventDateTime {
        date_time: Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()),
        time_zone: Some("Europe/Berlin".into()),
        ..Default::default()
    };
    let now = chrono::Utc::now();
    let start = (now + chrono::Duration::days(1))
        .format("%Y-%m-%dT09:00:00+01:00")
        .to_string();
    let end = (now + chrono::Duration::days(1))
        .format("%Y-%m-%dT10:00:00+01:00")
        .to_string();
    let series = google_calendar3::api::Event {
        summary: Some("Standup".into()),
        start: Some(at(&start)),
        end: Some(at(&end)),
        recurrence: Some(vec!["RRULE:FREQ=DAILY;COUNT=5".into()]),
        ..Default::default()
    };
    hub.events().insert(series, "primary").doit().await.unwrap();
    ctx.app.pull(&user, "incremental").await;
    wait_until("the series was imported", Duration::from_secs(10), || async {
        ctx.app.list_slot_ids(&user, "").await.len() == 1
    })
    .await;
    let ids = ctx.app.list_slot_ids(&user, "").await;
    let slot = ctx.app.slot(&user, &ids[0]).await;
    assert_eq!(slot["recurrence"], json!(["RRULE:FREQ=DAILY;COUNT=5"]));
    assert_eq!(slot["source"], "google");
    assert_eq!(occurrences(&ctx.app, &user, &ids[0], "").await.len(), 5);
    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["imported"], 0, "{report}");
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_total("events.patch"), 0, "{stats}");
}
