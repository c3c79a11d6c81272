//! Event types: `default`, `birthday`, `fromGmail`, `outOfOffice`, `focusTime` and
//! `workingLocation`, their `…Properties` kept, and Google's 400 `eventTypeRestriction`.

use crate::helpers::{google_error_body, reason, TestGoogle};
use google_calendar3::api::{
    Event, EventDateTime, EventFocusTimeProperties, EventOutOfOfficeProperties, EventWorkingLocationProperties,
};
use reqwest::Method;
use serde_json::{json, Value};

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

fn at(day: u32, hour: u32) -> Option<EventDateTime> {
    Some(EventDateTime {
        date_time: Some(format!("2025-03-{day:02}T{hour:02}:00:00Z").parse().unwrap()),
        ..EventDateTime::default()
    })
}

fn timed(summary: &str, event_type: &str, day: u32) -> Event {
    Event {
        summary: Some(summary.to_owned()),
        event_type: Some(event_type.to_owned()),
        start: at(day, 9),
        end: at(day, 10),
        ..Event::default()
    }
}

/// Seeds an event through the control API (as Contacts or Gmail would create it).
async fn seed(google: &TestGoogle, calendar: &str, event: Value) -> Value {
    let a = google
        .send(
            Method::POST,
            &format!("/_emulator/calendars/{calendar}/events"),
            None,
            Some(event),
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body
}

fn birthday() -> Value {
    json!({"summary": "Ann's birthday", "eventType": "birthday",
        "start": {"date": "2025-03-04"}, "end": {"date": "2025-03-05"},
        "recurrence": ["RRULE:FREQ=YEARLY"], "visibility": "private", "transparency": "transparent",
        "birthdayProperties": {"type": "birthday", "contact": "people/c12345"}})
}

fn from_gmail() -> Value {
    json!({"summary": "Flight to Lisbon", "eventType": "fromGmail",
        "start": {"dateTime": "2025-03-05T08:00:00Z"}, "end": {"dateTime": "2025-03-05T11:00:00Z"}})
}

#[tokio::test]
async fn every_event_type_comes_back_from_events_list_with_its_properties() {
    let google = TestGoogle::start().await;
    let hub = google.user_hub("ann@example.com").await;
    seed(&google, "ann@example.com", birthday()).await;
    seed(&google, "ann@example.com", from_gmail()).await;
    hub.events()
        .insert(timed("plain", "default", 3), "primary")
        .doit()
        .await
        .unwrap();
    let ooo = Event {
        out_of_office_properties: Some(EventOutOfOfficeProperties {
            auto_decline_mode: Some("declineOnlyNewConflictingInvitations".into()),
            decline_message: Some("Away".into()),
        }),
        ..timed("Away", "outOfOffice", 6)
    };
    hub.events().insert(ooo, "primary").doit().await.unwrap();
    let focus = Event {
        focus_time_properties: Some(EventFocusTimeProperties {
            chat_status: Some("doNotDisturb".into()),
            ..EventFocusTimeProperties::default()
        }),
        ..timed("Focus", "focusTime", 7)
    };
    hub.events().insert(focus, "primary").doit().await.unwrap();
    let wl = Event {
        working_location_properties: Some(EventWorkingLocationProperties {
            type_: Some("homeOffice".into()),
            home_office: Some(json!({})),
            ..EventWorkingLocationProperties::default()
        }),
        ..timed("Home", "workingLocation", 10)
    };
    hub.events().insert(wl, "primary").doit().await.unwrap();

    let (_, list) = hub.events().list("primary").doit().await.unwrap();
    let items = list.items.unwrap();
    let of = |t: &str| {
        items
            .iter()
            .find(|e| e.event_type.as_deref() == Some(t))
            .unwrap_or_else(|| panic!("{t} listed"))
    };
    assert_eq!(items.len(), 6);
    let b = of("birthday").birthday_properties.clone().unwrap();
    assert_eq!(
        (b.type_.as_deref(), b.contact.as_deref()),
        (Some("birthday"), Some("people/c12345"))
    );
    assert_eq!(of("fromGmail").summary.as_deref(), Some("Flight to Lisbon"));
    assert_eq!(
        of("outOfOffice")
            .out_of_office_properties
            .as_ref()
            .unwrap()
            .decline_message
            .as_deref(),
        Some("Away")
    );
    assert_eq!(
        of("focusTime")
            .focus_time_properties
            .as_ref()
            .unwrap()
            .chat_status
            .as_deref(),
        Some("doNotDisturb")
    );
    assert_eq!(
        of("workingLocation")
            .working_location_properties
            .as_ref()
            .unwrap()
            .type_
            .as_deref(),
        Some("homeOffice")
    );
    assert_eq!(of("default").summary.as_deref(), Some("plain"));

    let (_, only) = hub
        .events()
        .list("primary")
        .add_event_types("focusTime")
        .add_event_types("outOfOffice")
        .doit()
        .await
        .unwrap();
    let mut types: Vec<String> = only.items.unwrap().into_iter().filter_map(|e| e.event_type).collect();
    types.sort();
    assert_eq!(types, ["focusTime", "outOfOffice"], "eventTypes filters the listing");
}

#[tokio::test]
async fn birthdays_and_gmail_events_cannot_be_inserted_through_the_api() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    for body in [birthday(), from_gmail()] {
        let a = google.send(Method::POST, EVENTS, Some(&t), Some(body), &[]).await;
        assert_eq!((a.status, reason(&a)), (400, "eventTypeRestriction"), "{:?}", a.body);
        assert_eq!(a.body["error"]["errors"][0]["domain"], "calendar");
    }
    let bogus = json!({"eventType": "party", "start": {"date": "2025-03-04"}, "end": {"date": "2025-03-05"}});
    let a = google.send(Method::POST, EVENTS, Some(&t), Some(bogus), &[]).await;
    assert_eq!((a.status, reason(&a)), (400, "invalid"));
}

#[tokio::test]
async fn a_birthday_takes_a_color_and_reminders_but_refuses_other_changes() {
    let google = TestGoogle::start().await;
    let hub = google.user_hub("ann@example.com").await;
    let id = seed(&google, "ann@example.com", birthday()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let recolor = Event {
        color_id: Some("5".into()),
        ..Event::default()
    };
    let (_, got) = hub.events().patch(recolor, "primary", &id).doit().await.unwrap();
    assert_eq!(got.color_id.as_deref(), Some("5"));
    assert_eq!(
        got.birthday_properties.unwrap().type_.as_deref(),
        Some("birthday"),
        "kept"
    );

    for change in [
        Event {
            summary: Some("Bob".into()),
            ..Event::default()
        },
        Event {
            start: Some(EventDateTime {
                date: Some("2025-03-06".parse().unwrap()),
                ..EventDateTime::default()
            }),
            end: Some(EventDateTime {
                date: Some("2025-03-07".parse().unwrap()),
                ..EventDateTime::default()
            }),
            ..Event::default()
        },
        Event {
            event_type: Some("default".into()),
            ..Event::default()
        },
    ] {
        let err = hub.events().patch(change, "primary", &id).doit().await.unwrap_err();
        let body = google_error_body(&err);
        assert_eq!(body["error"]["code"], 400);
        assert_eq!(body["error"]["errors"][0]["reason"], "eventTypeRestriction");
    }
}

#[tokio::test]
async fn a_gmail_event_keeps_its_title_and_a_working_location_has_no_location() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&t);
    let id = seed(&google, "ann@example.com", from_gmail()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let retitle = Event {
        summary: Some("Trip".into()),
        ..Event::default()
    };
    let err = hub.events().patch(retitle, "primary", &id).doit().await.unwrap_err();
    let body = google_error_body(&err);
    assert_eq!(body["error"]["errors"][0]["reason"], "eventTypeRestriction");
    assert!(body["error"]["message"].as_str().unwrap().contains("title"));
    let hide = Event {
        visibility: Some("private".into()),
        ..Event::default()
    };
    let (_, got) = hub.events().patch(hide, "primary", &id).doit().await.unwrap();
    assert_eq!(got.visibility.as_deref(), Some("private"));

    let mut wl = json!({"eventType": "workingLocation", "location": "HQ",
        "start": {"dateTime": "2025-03-10T09:00:00Z"}, "end": {"dateTime": "2025-03-10T17:00:00Z"},
        "workingLocationProperties": {"type": "officeLocation", "officeLocation": {"label": "HQ"}}});
    let a = google.send(Method::POST, EVENTS, Some(&t), Some(wl.clone()), &[]).await;
    assert_eq!((a.status, reason(&a)), (400, "eventTypeRestriction"));
    wl.as_object_mut().unwrap().remove("location");
    let created = google.insert(&t, "primary", wl).await;
    let path = format!("{EVENTS}/{}", created["id"].as_str().unwrap());
    let a = google
        .send(Method::PATCH, &path, Some(&t), Some(json!({"location": "Cafe"})), &[])
        .await;
    assert_eq!((a.status, reason(&a)), (400, "eventTypeRestriction"));
    let a = google
        .send(
            Method::PATCH,
            &path,
            Some(&t),
            Some(json!({"summary": "Office day"})),
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "other changes to a working location are allowed");
    assert_eq!(a.body["workingLocationProperties"]["officeLocation"]["label"], "HQ");
}

#[tokio::test]
async fn an_event_without_a_type_is_default() {
    let google = TestGoogle::start().await;
    let hub = google.user_hub("ann@example.com").await;
    let (_, got) = hub
        .events()
        .insert(
            Event {
                event_type: None,
                ..timed("plain", "default", 3)
            },
            "primary",
        )
        .doit()
        .await
        .unwrap();
    assert_eq!(got.event_type.as_deref(), Some("default"));
}
