//! A calendar deleted with `calendars.delete` is gone: every operation on its id answers
//! Google's 404 `notFound`, through the real google-calendar3 client.

use crate::helpers::{google_error_body, Receiver, TestGoogle};
use google_calendar3::api::{Calendar, Channel, Event, EventDateTime};
use google_calendar3::Error;
use serde_json::{json, Value};

const EVENT_ID: &str = "slot00000000000000000000042";

fn event(summary: &str, id: Option<&str>) -> Event {
    let at = |h: u32| EventDateTime {
        date_time: Some(format!("2025-03-03T{h:02}:00:00Z").parse().unwrap()),
        ..EventDateTime::default()
    };
    Event {
        id: id.map(str::to_owned),
        summary: Some(summary.to_owned()),
        start: Some(at(9)),
        end: Some(at(10)),
        ..Event::default()
    }
}

fn not_found() -> Value {
    json!({"error": {
        "code": 404,
        "message": "Not Found",
        "errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}],
        "status": "NOT_FOUND",
    }})
}

fn assert_not_found<T: std::fmt::Debug>(op: &str, result: Result<T, Error>) {
    let err = result.expect_err(op);
    assert_eq!(google_error_body(&err), not_found(), "{op}");
}

/// A new secondary calendar's id.
async fn new_calendar(hub: &slotsync::google::hub::Hub) -> String {
    let calendar = Calendar {
        summary: Some("soon gone".into()),
        ..Calendar::default()
    };
    hub.calendars().insert(calendar).doit().await.unwrap().1.id.unwrap()
}

#[tokio::test]
async fn a_deleted_calendar_answers_404_not_found_to_every_event_operation_and_to_calendars_get() {
    let google = TestGoogle::start().await;
    let token = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&token);
    let cal_id = new_calendar(&hub).await;
    hub.events()
        .insert(event("before", Some(EVENT_ID)), &cal_id)
        .doit()
        .await
        .unwrap();
    let (_, listed) = hub.events().list(&cal_id).doit().await.unwrap();
    let sync_token = listed.next_sync_token.unwrap();
    let receiver = Receiver::start().await;
    let (_, channel) = hub
        .events()
        .watch(
            Channel {
                id: Some("before-delete".into()),
                type_: Some("web_hook".into()),
                address: Some(receiver.address()),
                ..Channel::default()
            },
            &cal_id,
        )
        .doit()
        .await
        .unwrap();

    hub.calendars().delete(&cal_id).doit().await.unwrap();

    let events = hub.events();
    assert_not_found("events.list", events.list(&cal_id).doit().await);
    assert_not_found(
        "events.list with a sync token",
        events.list(&cal_id).sync_token(&sync_token).doit().await,
    );
    assert_not_found(
        "events.insert",
        events.insert(event("after", None), &cal_id).doit().await,
    );
    assert_not_found("events.get", events.get(&cal_id, EVENT_ID).doit().await);
    assert_not_found(
        "events.patch",
        events.patch(event("patched", None), &cal_id, EVENT_ID).doit().await,
    );
    assert_not_found(
        "events.update",
        events.update(event("updated", None), &cal_id, EVENT_ID).doit().await,
    );
    assert_not_found("events.delete", events.delete(&cal_id, EVENT_ID).doit().await);
    let watch = Channel {
        id: Some("after-delete".into()),
        type_: Some("web_hook".into()),
        address: Some(receiver.address()),
        ..Channel::default()
    };
    assert_not_found("events.watch", events.watch(watch, &cal_id).doit().await);
    assert_not_found("calendars.get", hub.calendars().get(&cal_id).doit().await);
    assert_not_found("calendars.delete", hub.calendars().delete(&cal_id).doit().await);

    let (_, list) = hub.calendar_list().list().doit().await.unwrap();
    let ids: Vec<String> = list.items.unwrap().into_iter().filter_map(|c| c.id).collect();
    assert_eq!(ids, vec!["ann@example.com".to_owned()]);
    // Deleting a calendar stops its channels; stopping one again is Google's channel 404.
    let stopped = hub
        .channels()
        .stop(Channel {
            id: channel.id,
            resource_id: channel.resource_id,
            ..Channel::default()
        })
        .doit()
        .await
        .unwrap_err();
    let body = google_error_body(&stopped);
    assert_eq!(
        (&body["error"]["code"], &body["error"]["errors"][0]["reason"]),
        (&json!(404), &json!("notFound"))
    );
}

#[tokio::test]
async fn a_deleted_calendar_answers_404_over_raw_http_with_the_percent_encoded_id_too() {
    let google = TestGoogle::start().await;
    let token = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&token);
    let cal_id = new_calendar(&hub).await;
    hub.calendars().delete(&cal_id).doit().await.unwrap();
    let encoded = cal_id.replace('@', "%40");
    for path in [
        format!("/calendar/v3/calendars/{encoded}/events"),
        format!("/calendar/v3/calendars/{encoded}"),
        format!("/calendar/v3/calendars/{encoded}/events/{EVENT_ID}"),
    ] {
        let a = google.get(&path, &token).await;
        assert_eq!((a.status, &a.body), (404, &not_found()), "{path}");
    }
}
