//! Meetings: the same event in the organizer's and each attendee's calendar, 403
//! `forbiddenForNonOrganizer` on an attendee's change of shared fields, the organizer's
//! changes and deletion carried to every copy, and `sendUpdates` recorded.

use crate::helpers::{reason, Receiver, TestGoogle};
use crate::push::watch;
use google_calendar3::api::{Event, EventAttendee, EventDateTime, EventReminder, EventReminders};
use reqwest::Method;
use serde_json::{json, Value};

const ORG: &str = "org@example.com";
const BOB: &str = "bob@example.com";
const EVE: &str = "eve@partner.org";

async fn create_meeting(google: &TestGoogle, send_updates: &str) -> Value {
    let body = json!({"organizer": ORG, "attendees": [BOB, EVE], "sendUpdates": send_updates,
        "event": {"summary": "Planning", "start": {"dateTime": "2025-03-03T09:00:00Z"},
                  "end": {"dateTime": "2025-03-03T10:00:00Z"}}});
    let a = google.control("/meetings", body).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body
}

fn copy_in<'a>(events: &'a [Value], id: &str) -> &'a Value {
    events.iter().find(|e| e["id"] == id).expect("a copy of the meeting")
}

#[tokio::test]
async fn a_meeting_is_the_same_event_in_the_organizers_and_each_attendees_calendar() {
    let google = TestGoogle::start().await;
    let meeting = create_meeting(&google, "all").await;
    let id = meeting["id"].as_str().unwrap();
    assert_eq!(meeting["organizer"], json!({"email": ORG, "self": true}));
    let bob_hub = google.user_hub(BOB).await;
    let (_, copy) = bob_hub.events().get("primary", id).doit().await.unwrap();
    assert_eq!(copy.i_cal_uid.as_deref(), meeting["iCalUID"].as_str());
    let organizer = copy.organizer.unwrap();
    assert_eq!((organizer.email.as_deref(), organizer.self_), (Some(ORG), None));
    let attendees = copy.attendees.unwrap();
    let me = attendees.iter().find(|a| a.email.as_deref() == Some(BOB)).unwrap();
    assert_eq!(
        (me.self_, me.response_status.as_deref()),
        (Some(true), Some("needsAction"))
    );
    assert_eq!(copy_in(&google.events(EVE).await, id)["summary"], "Planning");
    let sent = google.sent_updates().await;
    assert_eq!(sent[0]["send_updates"], "all");
    assert_eq!(sent[0]["recipients"], json!([BOB, EVE]));
}

#[tokio::test]
async fn an_attendee_may_answer_and_set_reminders_but_not_change_shared_fields() {
    let google = TestGoogle::start().await;
    let id = create_meeting(&google, "none").await["id"].as_str().unwrap().to_owned();
    let bob = google.user_hub(BOB).await;
    let retitle = Event {
        summary: Some("Bob's planning".into()),
        ..Event::default()
    };
    let err = bob.events().patch(retitle, "primary", &id).doit().await.unwrap_err();
    let body = crate::helpers::google_error_body(&err);
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["errors"][0]["reason"], "forbiddenForNonOrganizer");
    assert_eq!(body["error"]["errors"][0]["domain"], "calendar");

    let (_, mine) = bob.events().get("primary", &id).doit().await.unwrap();
    let mut attendees = mine.attendees.clone().unwrap();
    for a in attendees.iter_mut().filter(|a| a.self_ == Some(true)) {
        a.response_status = Some("accepted".into());
    }
    let personal = Event {
        attendees: Some(attendees),
        color_id: Some("4".into()),
        reminders: Some(EventReminders {
            use_default: Some(false),
            overrides: Some(vec![EventReminder {
                method: Some("popup".into()),
                minutes: Some(15),
            }]),
        }),
        ..Event::default()
    };
    let (_, got) = bob.events().patch(personal, "primary", &id).doit().await.unwrap();
    assert_eq!(got.color_id.as_deref(), Some("4"));
    let organizers_copy = copy_in(&google.events(ORG).await, &id).clone();
    assert_eq!(organizers_copy.get("colorId"), None, "per-copy fields stay per copy");
}

#[tokio::test]
async fn the_organizers_changes_reach_every_copy_and_send_updates_is_recorded() {
    let google = TestGoogle::start().await;
    let id = create_meeting(&google, "none").await["id"].as_str().unwrap().to_owned();
    let org = google.user_hub(ORG).await;
    let moved = Event {
        summary: Some("Planning (moved)".into()),
        start: Some(EventDateTime {
            date_time: Some("2025-03-03T11:00:00Z".parse().unwrap()),
            ..EventDateTime::default()
        }),
        end: Some(EventDateTime {
            date_time: Some("2025-03-03T12:00:00Z".parse().unwrap()),
            ..EventDateTime::default()
        }),
        ..Event::default()
    };
    org.events()
        .patch(moved, "primary", &id)
        .send_updates("externalOnly")
        .doit()
        .await
        .unwrap();
    let bobs = copy_in(&google.events(BOB).await, &id).clone();
    assert_eq!(bobs["summary"], "Planning (moved)");
    assert_eq!(bobs["start"]["dateTime"], "2025-03-03T11:00:00Z");
    let last = google.sent_updates().await.pop().unwrap();
    assert_eq!(
        (last["op"].as_str(), last["send_updates"].as_str(), &last["recipients"]),
        (Some("events.patch"), Some("externalOnly"), &json!([EVE])),
        "only the guest outside example.com would be emailed"
    );
    assert_eq!(google.stats().await["send_updates"]["externalOnly"], 1);

    let t = google.user_token(ORG).await;
    let bad = google
        .send(
            Method::PATCH,
            &format!("/calendar/v3/calendars/primary/events/{id}?sendUpdates=everyone"),
            Some(&t),
            Some(json!({"summary": "x"})),
            &[],
        )
        .await;
    assert_eq!((bad.status, reason(&bad)), (400, "invalid"));
}

#[tokio::test]
async fn the_organizers_deletion_cancels_the_meeting_for_every_attendee() {
    let google = TestGoogle::start().await;
    let id = create_meeting(&google, "none").await["id"].as_str().unwrap().to_owned();
    let bob_token = google.user_token(BOB).await;
    let bob = google.hub_with_token(&bob_token);
    let (_, full) = bob.events().list("primary").doit().await.unwrap();
    let sync_token = full.next_sync_token.unwrap();
    let receiver = Receiver::start().await;
    assert_eq!(
        watch(&google, &bob_token, "bob-chan", &receiver.address(), json!({}))
            .await
            .status,
        200
    );
    receiver.wait_for_count(1).await;

    let org = google.user_hub(ORG).await;
    org.events()
        .delete("primary", &id)
        .send_updates("all")
        .doit()
        .await
        .unwrap();

    let (_, delta) = bob
        .events()
        .list("primary")
        .sync_token(&sync_token)
        .doit()
        .await
        .unwrap();
    let items = delta.items.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].id.as_deref(), items[0].status.as_deref()),
        (Some(id.as_str()), Some("cancelled"))
    );
    let got = receiver.wait_for_count(2).await;
    assert_eq!(got[1].state(), "exists");
    assert_eq!(copy_in(&google.events(EVE).await, &id)["status"], "cancelled");
    let last = google.sent_updates().await.pop().unwrap();
    assert_eq!(
        (last["op"].as_str(), &last["recipients"]),
        (Some("events.delete"), &json!([BOB, EVE]))
    );
}

#[tokio::test]
async fn an_event_inserted_with_attendees_is_copied_to_attendees_with_a_calendar_here() {
    let google = TestGoogle::start().await;
    google.user_token(BOB).await;
    let org = google.user_hub(ORG).await;
    let at = |h: u32| {
        Some(EventDateTime {
            date_time: Some(format!("2025-03-04T{h:02}:00:00Z").parse().unwrap()),
            ..EventDateTime::default()
        })
    };
    let guest = |email: &str| EventAttendee {
        email: Some(email.into()),
        ..EventAttendee::default()
    };
    let (_, created) = org
        .events()
        .insert(
            Event {
                summary: Some("1:1".into()),
                start: at(9),
                end: at(10),
                attendees: Some(vec![guest(BOB), guest("stranger@elsewhere.net")]),
                ..Event::default()
            },
            "primary",
        )
        .send_updates("all")
        .doit()
        .await
        .unwrap();
    let id = created.id.unwrap();
    assert_eq!(copy_in(&google.events(BOB).await, &id)["summary"], "1:1");
    assert!(google.events("stranger@elsewhere.net").await.is_empty());
    let last = google.sent_updates().await.pop().unwrap();
    assert_eq!(last["recipients"], json!([BOB, "stranger@elsewhere.net"]));
}
