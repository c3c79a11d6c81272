//! The real google-calendar3 client against the emulator.

use crate::helpers::{Receiver, TestGoogle};
use google_calendar3::api::{Calendar, Channel, Event, EventDateTime, EventExtendedProperties};
use google_calendar3::Error;
use serde_json::json;
use std::collections::HashMap;

fn event(summary: &str, id: Option<&str>, hour: u32) -> Event {
    let at = |h: u32| EventDateTime {
        date_time: Some(format!("2025-03-03T{h:02}:00:00Z").parse().unwrap()),
        ..EventDateTime::default()
    };
    Event {
        id: id.map(str::to_owned),
        summary: Some(summary.to_owned()),
        start: Some(at(hour)),
        end: Some(at(hour + 1)),
        extended_properties: Some(EventExtendedProperties {
            private: Some(HashMap::from([("slotsync_slot".to_owned(), "s1".to_owned())])),
            shared: None,
        }),
        ..Event::default()
    }
}

fn google_reason(e: &Error) -> (i64, String) {
    match e {
        Error::BadRequest(v) => (
            v["error"]["code"].as_i64().unwrap_or_default(),
            v["error"]["errors"][0]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        other => panic!("expected a Google JSON error, got {other:?}"),
    }
}

#[tokio::test]
async fn google_calendar3_drives_events_calendars_and_channels() {
    let google = TestGoogle::start().await;
    let token = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&token);

    let (_, cal) = hub
        .calendars()
        .insert(Calendar {
            summary: Some("slotsync".into()),
            ..Calendar::default()
        })
        .doit()
        .await
        .unwrap();
    let cal_id = cal.id.clone().unwrap();
    let (_, got) = hub.calendars().get(&cal_id).doit().await.unwrap();
    assert_eq!(got.summary.as_deref(), Some("slotsync"));
    let (_, list) = hub.calendar_list().list().doit().await.unwrap();
    assert_eq!(list.items.unwrap().len(), 2);

    let (_, inserted) = hub
        .events()
        .insert(event("a", Some("slot00000000000000000000001"), 9), &cal_id)
        .doit()
        .await
        .unwrap();
    assert_eq!(inserted.id.as_deref(), Some("slot00000000000000000000001"));
    assert_eq!(inserted.sequence, Some(0));
    let dup = hub
        .events()
        .insert(event("a", Some("slot00000000000000000000001"), 9), &cal_id)
        .doit()
        .await
        .unwrap_err();
    assert_eq!(google_reason(&dup), (409, "duplicate".to_owned()));

    let (_, patched) = hub
        .events()
        .patch(
            Event {
                summary: Some("b".into()),
                ..Event::default()
            },
            &cal_id,
            "slot00000000000000000000001",
        )
        .doit()
        .await
        .unwrap();
    assert_eq!(patched.summary.as_deref(), Some("b"));
    assert_ne!(patched.etag, inserted.etag);
    let (_, updated) = hub
        .events()
        .update(event("c", None, 10), &cal_id, "slot00000000000000000000001")
        .doit()
        .await
        .unwrap();
    assert_eq!(updated.sequence, Some(1));
    let (_, fetched) = hub
        .events()
        .get(&cal_id, "slot00000000000000000000001")
        .doit()
        .await
        .unwrap();
    assert_eq!(fetched.summary.as_deref(), Some("c"));

    let (_, listed) = hub
        .events()
        .list(&cal_id)
        .add_private_extended_property("slotsync_slot=s1")
        .doit()
        .await
        .unwrap();
    assert_eq!(listed.items.unwrap().len(), 1);
    let sync_token = listed.next_sync_token.unwrap();

    hub.events()
        .delete(&cal_id, "slot00000000000000000000001")
        .doit()
        .await
        .unwrap();
    let again = hub
        .events()
        .delete(&cal_id, "slot00000000000000000000001")
        .doit()
        .await
        .unwrap_err();
    assert_eq!(google_reason(&again), (410, "deleted".to_owned()));
    let (_, delta) = hub.events().list(&cal_id).sync_token(&sync_token).doit().await.unwrap();
    let items = delta.items.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].status.as_deref(), Some("cancelled"));

    google.control("/sync-tokens/invalidate", json!({})).await;
    let stale = hub
        .events()
        .list(&cal_id)
        .sync_token(&sync_token)
        .doit()
        .await
        .unwrap_err();
    assert_eq!(google_reason(&stale), (410, "fullSyncRequired".to_owned()));

    let receiver = Receiver::start().await;
    let (_, channel) = hub
        .events()
        .watch(
            Channel {
                id: Some("chan-1".into()),
                type_: Some("web_hook".into()),
                address: Some(receiver.address()),
                token: Some("tok".into()),
                ..Channel::default()
            },
            &cal_id,
        )
        .doit()
        .await
        .unwrap();
    assert_eq!(channel.kind.as_deref(), Some("api#channel"));
    assert!(channel.expiration.unwrap() > chrono::Utc::now().timestamp_millis());
    receiver.wait_for_count(1).await;
    hub.channels()
        .stop(Channel {
            id: channel.id.clone(),
            resource_id: channel.resource_id.clone(),
            ..Channel::default()
        })
        .doit()
        .await
        .unwrap();

    hub.calendars().delete(&cal_id).doit().await.unwrap();
    let missing = hub.calendars().get(&cal_id).doit().await.unwrap_err();
    assert_eq!(google_reason(&missing), (404, "notFound".to_owned()));
}

#[tokio::test]
async fn google_calendar3_sees_a_bad_token_as_a_401_json_error() {
    let google = TestGoogle::start().await;
    let hub = google.hub_with_token("ya29.bogus");
    let err = hub.events().list("primary").doit().await.unwrap_err();
    assert_eq!(google_reason(&err), (401, "authError".to_owned()));
}
