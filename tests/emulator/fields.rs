//! `visibility`, `transparency`, `colorId` and `reminders`: stored, returned, and
//! validated as Google does.

use crate::helpers::{google_error_body, reason, timed_event, TestGoogle};
use google_calendar3::api::{Event, EventDateTime, EventReminder, EventReminders};
use reqwest::Method;
use serde_json::json;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

fn popup(minutes: i32) -> EventReminder {
    EventReminder {
        method: Some("popup".into()),
        minutes: Some(minutes),
    }
}

#[tokio::test]
async fn visibility_transparency_color_and_reminders_round_trip_through_google_calendar3() {
    let google = TestGoogle::start().await;
    let hub = google.user_hub("ann@example.com").await;
    let at = |h: u32| {
        Some(EventDateTime {
            date_time: Some(format!("2025-03-03T{h:02}:00:00Z").parse().unwrap()),
            ..EventDateTime::default()
        })
    };
    let (_, created) = hub
        .events()
        .insert(
            Event {
                summary: Some("dentist".into()),
                start: at(9),
                end: at(10),
                visibility: Some("private".into()),
                transparency: Some("transparent".into()),
                color_id: Some("11".into()),
                reminders: Some(EventReminders {
                    use_default: Some(false),
                    overrides: Some(vec![popup(10), popup(60)]),
                }),
                ..Event::default()
            },
            "primary",
        )
        .doit()
        .await
        .unwrap();
    let id = created.id.unwrap();
    let (_, got) = hub.events().get("primary", &id).doit().await.unwrap();
    assert_eq!(got.visibility.as_deref(), Some("private"));
    assert_eq!(got.transparency.as_deref(), Some("transparent"));
    assert_eq!(got.color_id.as_deref(), Some("11"));
    let reminders = got.reminders.unwrap();
    assert_eq!(reminders.use_default, Some(false));
    assert_eq!(reminders.overrides.unwrap()[1].minutes, Some(60));

    // Patch merges objects: the overrides are cleared explicitly.
    let back_to_default = Event {
        reminders: Some(EventReminders {
            use_default: Some(true),
            overrides: Some(vec![]),
        }),
        visibility: Some("default".into()),
        ..Event::default()
    };
    let (_, patched) = hub
        .events()
        .patch(back_to_default, "primary", &id)
        .doit()
        .await
        .unwrap();
    assert_eq!(patched.reminders.unwrap().use_default, Some(true));
    assert_eq!(patched.visibility.as_deref(), Some("default"));

    let six = Event {
        reminders: Some(EventReminders {
            use_default: Some(false),
            overrides: Some((1..=6).map(popup).collect()),
        }),
        ..Event::default()
    };
    let err = hub.events().patch(six, "primary", &id).doit().await.unwrap_err();
    assert_eq!(google_error_body(&err)["error"]["code"], 400);
}

#[tokio::test]
async fn values_google_does_not_know_are_400() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let with = |field: &str, value: serde_json::Value| {
        let mut ev = timed_event("a", 3, 9);
        ev[field] = value;
        ev
    };
    for bad in [
        with("colorId", json!("12")),
        with("colorId", json!("0")),
        with("visibility", json!("secret")),
        with("transparency", json!("free")),
        with(
            "reminders",
            json!({"useDefault": true, "overrides": [{"method": "popup", "minutes": 5}]}),
        ),
        with(
            "reminders",
            json!({"useDefault": false, "overrides": [{"method": "sms", "minutes": 5}]}),
        ),
        with(
            "reminders",
            json!({"useDefault": false, "overrides": [{"method": "email", "minutes": 40321}]}),
        ),
    ] {
        let a = google
            .send(Method::POST, EVENTS, Some(&t), Some(bad.clone()), &[])
            .await;
        assert_eq!(a.status, 400, "{bad} → {:?}", a.body);
        assert!(["invalid", "required"].contains(&reason(&a)));
    }
    let ok = with("colorId", json!("1"));
    let created = google.insert(&t, "primary", ok).await;
    assert_eq!(
        created["reminders"],
        json!({"useDefault": true}),
        "reminders default to the calendar's"
    );
}
