//! The slot fields users expect from a calendar (issue 17): `visibility`, `transparency`,
//! `color_id` and `reminders`, through the API to the emulated Google and back.

use google_calendar3::api::{Event, EventReminder, EventReminders};
use serde_json::{json, Value};

use crate::helpers::{event_id_of, slot_body, spawn_app_with_google, ConnectedApp, TestUser};
use slotsync_testkit::{sync_state, SyncState};

const EMAIL: &str = "ada@example.com";

/// A timed slot body with all four fields set away from their defaults.
fn dressed_body(title: &str) -> Value {
    let mut body = slot_body(title, "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    let fields = json!({
        "visibility": "private",
        "transparency": "free",
        "color_id": "7",
        "reminders": {"use_default": false, "minutes": [60, 10]},
    });
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    body
}

/// The event Google holds for `slot`.
async fn event_of(ctx: &ConnectedApp, slot: &Value) -> Value {
    let id = event_id_of(slot);
    ctx.google
        .events(EMAIL)
        .await
        .into_iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no event {id} in Google"))
}

/// A slot created through the API and pushed.
async fn pushed(ctx: &ConnectedApp, user: &TestUser, body: &Value) -> Value {
    let slot = ctx.app.create_slot(user, body).await;
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    slot
}

/// Patches the slot's event as the user does in Google Calendar.
async fn edit_in_google(ctx: &ConnectedApp, slot: &Value, patch: Event) {
    let hub = ctx.google.user_hub(EMAIL).await;
    hub.events()
        .patch(patch, "primary", &event_id_of(slot))
        .doit()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_slot_with_all_four_fields_reaches_google_with_them_and_shows_them() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed(&ctx, &user, &dressed_body("dressed")).await;
    assert_eq!(slot["visibility"], "private");
    assert_eq!(slot["transparency"], "free");
    assert_eq!(slot["color_id"], "7");
    assert_eq!(
        slot["reminders"],
        json!({"use_default": false, "minutes": [10, 60]}),
        "sorted"
    );

    let event = event_of(&ctx, &slot).await;
    assert_eq!(event["visibility"], "private", "{event}");
    assert_eq!(event["transparency"], "transparent", "{event}");
    assert_eq!(event["colorId"], "7", "{event}");
    assert_eq!(
        event["reminders"],
        json!({"useDefault": false, "overrides": [
            {"method": "popup", "minutes": 10}, {"method": "popup", "minutes": 60}
        ]}),
        "{event}"
    );

    // A slot that says nothing has Google's defaults, and shows ours.
    let plain = pushed(
        &ctx,
        &user,
        &slot_body("plain", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z"),
    )
    .await;
    assert_eq!(plain["visibility"], "default");
    assert_eq!(plain["transparency"], "busy");
    assert!(plain.get("color_id").is_none(), "{plain}");
    assert_eq!(plain["reminders"], json!({"use_default": true}));
    let event = event_of(&ctx, &plain).await;
    for key in ["visibility", "transparency", "colorId"] {
        assert!(event.get(key).is_none(), "{key}: {event}");
    }
    assert_eq!(event["reminders"], json!({"useDefault": true}), "{event}");
}

#[tokio::test]
async fn our_own_write_of_the_fields_comes_back_as_an_echo() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    ctx.app.pull(&user, "incremental").await;
    let slot = pushed(&ctx, &user, &dressed_body("echo")).await;
    let id = slot["id"].as_str().unwrap();
    for _ in 0..2 {
        let report = ctx.app.pull(&user, "incremental").await;
        assert_eq!(report["applied"], 0, "{report}");
        assert_eq!(report["conflicts"], 0, "{report}");
    }
    // A full listing sees every event again: still nothing new.
    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["applied"], 0, "{report}");
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(now["version"], 1, "{now}");
    assert_eq!(sync_state(&now), SyncState::Synced);
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.insert", "200"), 1, "{stats}");
    assert_eq!(stats.op_count("events.patch", "200"), 0, "{stats}");
}

#[tokio::test]
async fn a_colour_or_reminders_changed_in_google_come_back_to_the_slot_and_are_not_pushed_back() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed(
        &ctx,
        &user,
        &slot_body("mine", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
    )
    .await;
    let id = slot["id"].as_str().unwrap();
    ctx.app.pull(&user, "incremental").await;

    // Only the colour.
    edit_in_google(
        &ctx,
        &slot,
        Event {
            color_id: Some("4".into()),
            ..Default::default()
        },
    )
    .await;
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["applied"], 1, "{report}");
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(now["color_id"], "4", "{now}");
    assert_eq!(now["version"], 2, "{now}");
    assert_eq!(sync_state(&now), SyncState::Synced, "not pushed back");

    // Only the reminders: an email one and a popup one.
    edit_in_google(
        &ctx,
        &slot,
        Event {
            reminders: Some(EventReminders {
                use_default: Some(false),
                overrides: Some(vec![
                    EventReminder {
                        method: Some("email".into()),
                        minutes: Some(1440),
                    },
                    EventReminder {
                        method: Some("popup".into()),
                        minutes: Some(15),
                    },
                ]),
            }),
            ..Default::default()
        },
    )
    .await;
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["applied"], 1, "{report}");
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(
        now["reminders"],
        json!({"use_default": false, "minutes": [15], "email_minutes": [1440]}),
        "{now}"
    );
    assert_eq!(now["color_id"], "4", "the colour stays");
    assert_eq!(now["version"], 3, "{now}");
    assert_eq!(sync_state(&now), SyncState::Synced);

    // Nothing of it was written back, and pulling again finds nothing new.
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["applied"], 0, "{report}");
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.patch", "200"), 2, "only the user's two: {stats}");

    // A later edit here keeps what Google gave (the email reminder survives our patch).
    let mut body = slot_body("mine, renamed", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    body["color_id"] = now["color_id"].clone();
    body["reminders"] = now["reminders"].clone();
    let resp = ctx.app.put_slot(&user, id, &body, Some("\"3\"")).await;
    assert_eq!(resp.status(), 200);
    ctx.app.wait_until_pushed(id).await;
    let event = event_of(&ctx, &slot).await;
    assert_eq!(event["summary"], "mine, renamed");
    assert_eq!(event["colorId"], "4");
    assert_eq!(
        event["reminders"],
        json!({"useDefault": false, "overrides": [
            {"method": "popup", "minutes": 15}, {"method": "email", "minutes": 1440}
        ]}),
        "{event}"
    );
}

#[tokio::test]
async fn a_put_back_to_the_defaults_clears_the_fields_in_google() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed(&ctx, &user, &dressed_body("dressed")).await;
    let id = slot["id"].as_str().unwrap();

    let plain = slot_body("dressed", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    let resp = ctx.app.put_slot(&user, id, &plain, Some("\"1\"")).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["visibility"], "default");
    assert_eq!(answer["reminders"], json!({"use_default": true}));
    ctx.app.wait_until_pushed(id).await;

    let event = event_of(&ctx, &slot).await;
    for key in ["visibility", "transparency", "colorId"] {
        assert!(event.get(key).is_none(), "{key} is still set: {event}");
    }
    assert_eq!(
        event["reminders"],
        json!({"useDefault": true}),
        "the overrides are gone: {event}"
    );
    // The push of the defaults is an echo too.
    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["applied"], 0, "{report}");
    assert_eq!(ctx.app.slot(&user, id).await["version"], 2);
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("events.patch", "200"), 1, "{stats}");
}

#[tokio::test]
async fn bad_values_are_refused_naming_the_field_and_nothing_is_written() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed(&ctx, &user, &dressed_body("kept")).await;
    let id = slot["id"].as_str().unwrap();
    let cases = [
        (json!({"visibility": "secret"}), "visibility"),
        (json!({"visibility": 3}), "visibility"),
        (json!({"transparency": "opaque"}), "transparency"),
        (json!({"color_id": "12"}), "color_id"),
        (json!({"color_id": "0"}), "color_id"),
        (json!({"color_id": 5}), "color_id"),
        (
            json!({"reminders": {"use_default": false, "minutes": [40321]}}),
            "reminders.minutes",
        ),
        (
            json!({"reminders": {"use_default": false, "minutes": [-5]}}),
            "reminders.minutes",
        ),
        (
            json!({"reminders": {"use_default": false, "minutes": [1, 2, 3, 4, 5, 6]}}),
            "reminders.minutes",
        ),
        (
            json!({"reminders": {"use_default": false, "minutes": [10, 10]}}),
            "reminders.minutes",
        ),
        (
            json!({"reminders": {"use_default": true, "minutes": [10]}}),
            "reminders.minutes",
        ),
        (
            json!({"reminders": {"use_default": false, "minutes": [1, 2, 3], "email_minutes": [4, 5, 6]}}),
            "reminders.email_minutes",
        ),
        (json!({"reminders": {"minutes": [10]}}), "reminders.use_default"),
        (
            json!({"reminders": {"use_default": false, "sms_minutes": [10]}}),
            "reminders.sms_minutes",
        ),
    ];
    for (extra, field) in cases {
        let mut body = slot_body("bad", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z");
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        for resp in [
            ctx.app.post_slot(&user, &body).await,
            ctx.app.put_slot(&user, id, &body, None).await,
        ] {
            assert_eq!(resp.status(), 400, "{extra}");
            let answer: Value = resp.json().await.unwrap();
            assert_eq!(answer["field"], field, "{extra}: {answer}");
            assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
        }
    }
    // Nothing changed: one slot, as it was, still synced.
    assert_eq!(ctx.app.list_slot_ids(&user, "").await, vec![id.to_owned()]);
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(now["version"], 1);
    assert_eq!(now["color_id"], "7");
    assert_eq!(sync_state(&now), SyncState::Synced);
}

/// `ctx`'s calendar is pulled twice after clearing the emulator's counters: nothing new
/// here, nothing written to Google.
async fn assert_no_write_back(ctx: &ConnectedApp, user: &TestUser) {
    let second = ctx.pull_twice_writing_nothing(user).await;
    assert_eq!(second["applied"], 0, "{second}");
}

#[tokio::test]
async fn a_changed_occurrence_carries_the_series_appearance_and_follows_its_changes() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let mut series = slot_body("weekly", "2027-01-04T09:00:00Z", "2027-01-04T10:00:00Z");
    series["recurrence"] = json!(["RRULE:FREQ=WEEKLY;COUNT=5"]);
    series["color_id"] = json!("3");
    series["reminders"] = json!({"use_default": false, "minutes": [5]});
    let slot = pushed(&ctx, &user, &series).await;
    let id = slot["id"].as_str().unwrap();
    let moved = json!({
        "title": "weekly (late)",
        "start": "2027-01-11T15:00:00Z",
        "end": "2027-01-11T16:00:00Z",
    });
    let resp = ctx
        .app
        .client
        .put(ctx.app.url(&format!("/slots/{id}/occurrences/2027-01-11T09:00:00Z")))
        .bearer_auth(&user.token)
        .json(&moved)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    ctx.app.wait_until_pushed(id).await;
    let instance_id = format!("{}_20270111T090000Z", event_id_of(&slot));
    let instance = || async {
        ctx.google
            .events(EMAIL)
            .await
            .into_iter()
            .find(|e| e["id"] == instance_id.as_str())
            .unwrap_or_else(|| panic!("no instance {instance_id} in Google"))
    };
    let event = instance().await;
    assert_eq!(event["summary"], "weekly (late)", "{event}");
    assert_eq!(event["colorId"], "3", "{event}");
    assert_eq!(
        event["reminders"],
        json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 5}]})
    );
    assert_no_write_back(&ctx, &user).await;

    // The series changes colour and goes back to the default reminders: the changed
    // occurrence follows.
    series["color_id"] = json!("9");
    series.as_object_mut().unwrap().remove("reminders");
    let resp = ctx.app.put_slot(&user, id, &series, None).await;
    assert_eq!(resp.status(), 200);
    ctx.app.wait_until_pushed(id).await;
    let event = instance().await;
    assert_eq!(event["summary"], "weekly (late)", "{event}");
    assert_eq!(event["colorId"], "9", "{event}");
    assert_eq!(event["reminders"], json!({"useDefault": true}), "{event}");
    assert_eq!(event_of(&ctx, &slot).await["colorId"], "9");
    assert_no_write_back(&ctx, &user).await;
}

#[tokio::test]
async fn the_change_feed_shows_the_fields() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = ctx.app.create_slot(&user, &dressed_body("fed")).await;
    let page = ctx.app.get_json(&user, "/changes?limit=500").await;
    let shown = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find_map(|c| (c["slot"]["id"] == slot["id"]).then(|| c["slot"].clone()))
        .unwrap_or_else(|| panic!("no change of the slot: {page}"));
    for key in ["visibility", "transparency", "color_id", "reminders"] {
        assert_eq!(shown[key], slot[key], "{key}: {shown}");
    }
}
