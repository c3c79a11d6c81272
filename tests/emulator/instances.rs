//! Recurring events and their instances, as Google has them: instance ids, events.get /
//! patch / delete on instance ids, events.instances with paging, exceptions in full and
//! incremental listings (singleEvents true and false), DST, and the "this and following"
//! split — through raw HTTP and the real google-calendar3 client.

use crate::helpers::{reason, Answer, Receiver, TestGoogle};
use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use google_calendar3::api::{Channel, Event, EventDateTime};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Every page of `path` (a listing), asserting 200; the items and the last page's body.
async fn all_pages(google: &TestGoogle, token: &str, path: &str, pairs: &[(&str, &str)]) -> (Vec<Value>, Value) {
    let mut items = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = pairs.to_vec();
        if let Some(p) = &page {
            q.push(("pageToken", p));
        }
        let a = google.get(&format!("{path}?{}", query(&q)), token).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        items.extend(a.body["items"].as_array().unwrap().iter().cloned());
        match a.body["nextPageToken"].as_str() {
            Some(p) => page = Some(p.to_owned()),
            None => return (items, a.body),
        }
    }
}

async fn list(google: &TestGoogle, token: &str, pairs: &[(&str, &str)]) -> (Vec<Value>, String) {
    let (items, last) = all_pages(google, token, EVENTS, pairs).await;
    (items, last["nextSyncToken"].as_str().unwrap_or_default().to_owned())
}

async fn instances(google: &TestGoogle, token: &str, master: &str, pairs: &[(&str, &str)]) -> Vec<Value> {
    all_pages(google, token, &format!("{EVENTS}/{master}/instances"), pairs)
        .await
        .0
}

async fn send(google: &TestGoogle, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
    google.send(method, path, Some(token), body, &[]).await
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A weekly series of `count` Mondays at 09:00–10:00 Europe/Berlin from 2025-03-03.
fn weekly_berlin(count: u32) -> Value {
    json!({"summary": "office hours",
        "start": {"dateTime": "2025-03-03T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2025-03-03T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "recurrence": [format!("RRULE:FREQ=WEEKLY;COUNT={count}")]})
}

#[tokio::test]
async fn instance_ids_are_the_master_id_and_the_original_start_in_utc_or_the_all_day_date() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let timed = id_of(&google.insert(&t, "primary", weekly_berlin(3)).await);
    let all_day = id_of(
        &google
            .insert(
                &t,
                "primary",
                json!({"summary": "holiday", "start": {"date": "2025-03-01"}, "end": {"date": "2025-03-02"},
                    "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]}),
            )
            .await,
    );
    assert_eq!(
        ids(&instances(&google, &t, &timed, &[]).await),
        vec![
            format!("{timed}_20250303T080000Z"),
            format!("{timed}_20250310T080000Z"),
            format!("{timed}_20250317T080000Z")
        ]
    );
    let days = instances(&google, &t, &all_day, &[]).await;
    assert_eq!(
        ids(&days),
        vec![
            format!("{all_day}_20250301"),
            format!("{all_day}_20250302"),
            format!("{all_day}_20250303")
        ]
    );
    assert_eq!(days[1]["start"], json!({"date": "2025-03-02"}));
    assert_eq!(days[1]["end"], json!({"date": "2025-03-03"}));

    let got = google.get(&format!("{EVENTS}/{timed}_20250310T080000Z"), &t).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["id"], format!("{timed}_20250310T080000Z"));
    assert_eq!(got.body["recurringEventId"], timed.as_str());
    assert_eq!(got.body["originalStartTime"]["dateTime"], "2025-03-10T09:00:00+01:00");
    assert_eq!(got.body["originalStartTime"]["timeZone"], "Europe/Berlin");
    assert_eq!(got.body["start"]["dateTime"], "2025-03-10T09:00:00+01:00");
    assert!(got.body.get("recurrence").is_none());
    let day = google.get(&format!("{EVENTS}/{all_day}_20250302"), &t).await;
    assert_eq!(day.status, 200);
    assert_eq!(day.body["originalStartTime"], json!({"date": "2025-03-02"}));

    for missing in [
        format!("{timed}_20250311T080000Z"), // a Tuesday: not an occurrence
        format!("{timed}_20250310T090000Z"), // right day, wrong time
        format!("{timed}_20250324T080000Z"), // after COUNT=3
        format!("{all_day}_20250304"),
        format!("{timed}_2025031"),
        "nosuchmaster_20250310T080000Z".to_owned(),
    ] {
        let a = google.get(&format!("{EVENTS}/{missing}"), &t).await;
        assert_eq!((a.status, reason(&a)), (404, "notFound"), "{missing}");
        let p = send(
            &google,
            Method::PATCH,
            &format!("{EVENTS}/{missing}"),
            &t,
            Some(json!({"summary": "x"})),
        )
        .await;
        assert_eq!(p.status, 404, "{missing}");
    }
}

fn berlin(date_time: &str) -> EventDateTime {
    EventDateTime {
        date_time: Some(DateTime::parse_from_rfc3339(date_time).unwrap().with_timezone(&Utc)),
        time_zone: Some("Europe/Berlin".to_owned()),
        ..EventDateTime::default()
    }
}

#[tokio::test]
async fn google_calendar3_patches_an_instance_into_an_exception_seen_by_get_instances_and_list() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&t);
    let (_, master) = hub
        .events()
        .insert(
            Event {
                summary: Some("tutoring".into()),
                start: Some(berlin("2025-03-03T09:00:00+01:00")),
                end: Some(berlin("2025-03-03T10:00:00+01:00")),
                recurrence: Some(vec!["RRULE:FREQ=WEEKLY;COUNT=4".into()]),
                ..Event::default()
            },
            "primary",
        )
        .doit()
        .await
        .unwrap();
    let master_id = master.id.clone().unwrap();
    let (_, listed) = hub.events().instances("primary", &master_id).doit().await.unwrap();
    let listed = listed.items.unwrap();
    assert_eq!(listed.len(), 4);
    let second = listed[1].clone();
    let second_id = second.id.clone().unwrap();
    assert_eq!(second_id, format!("{master_id}_20250310T080000Z"));
    assert_eq!(second.recurring_event_id.as_deref(), Some(master_id.as_str()));

    let (_, patched) = hub
        .events()
        .patch(
            Event {
                summary: Some("tutoring (moved)".into()),
                start: Some(berlin("2025-03-11T14:00:00+01:00")),
                end: Some(berlin("2025-03-11T15:00:00+01:00")),
                ..Event::default()
            },
            "primary",
            &second_id,
        )
        .doit()
        .await
        .unwrap();
    assert_eq!(patched.id.as_deref(), Some(second_id.as_str()));
    assert_eq!(patched.recurring_event_id.as_deref(), Some(master_id.as_str()));
    assert_eq!(
        patched.original_start_time.as_ref().and_then(|o| o.date_time),
        Some("2025-03-10T08:00:00Z".parse().unwrap())
    );
    assert_ne!(patched.etag, master.etag, "the exception has its own etag");
    assert_ne!(patched.updated, master.updated);

    let (_, got) = hub.events().get("primary", &second_id).doit().await.unwrap();
    assert_eq!(got.summary.as_deref(), Some("tutoring (moved)"));
    assert_eq!(got.etag, patched.etag);
    assert_eq!(
        got.start.and_then(|s| s.date_time),
        Some("2025-03-11T13:00:00Z".parse().unwrap())
    );
    let (_, master_again) = hub.events().get("primary", &master_id).doit().await.unwrap();
    assert_eq!(master_again.etag, master.etag, "the master itself is unchanged");

    let (_, after) = hub.events().instances("primary", &master_id).doit().await.unwrap();
    let after = after.items.unwrap();
    assert_eq!(after.len(), 4);
    assert_eq!(after[1].summary.as_deref(), Some("tutoring (moved)"));
    assert_eq!(after[0].summary.as_deref(), Some("tutoring"));
    let (_, only) = hub
        .events()
        .instances("primary", &master_id)
        .original_start("2025-03-10T09:00:00+01:00")
        .doit()
        .await
        .unwrap();
    assert_eq!(
        only.items
            .unwrap()
            .iter()
            .map(|e| e.id.clone().unwrap())
            .collect::<Vec<_>>(),
        vec![second_id.clone()]
    );

    // singleEvents=true: every occurrence, the moved one at its new time.
    let (_, singles) = hub
        .events()
        .list("primary")
        .single_events(true)
        .order_by("startTime")
        .doit()
        .await
        .unwrap();
    let singles = singles.items.unwrap();
    assert_eq!(singles.len(), 4);
    assert_eq!(singles[1].id.as_deref(), Some(second_id.as_str()));
    assert_eq!(singles[1].summary.as_deref(), Some("tutoring (moved)"));
    // A window holding only the new time finds the exception, not the original slot.
    let (_, moved_day) = hub
        .events()
        .list("primary")
        .single_events(true)
        .time_min("2025-03-11T00:00:00Z".parse().unwrap())
        .time_max("2025-03-12T00:00:00Z".parse().unwrap())
        .doit()
        .await
        .unwrap();
    assert_eq!(moved_day.items.unwrap().len(), 1);
    let (_, original_day) = hub
        .events()
        .list("primary")
        .single_events(true)
        .time_min("2025-03-10T00:00:00Z".parse().unwrap())
        .time_max("2025-03-11T00:00:00Z".parse().unwrap())
        .doit()
        .await
        .unwrap();
    assert_eq!(original_day.items.unwrap_or_default().len(), 0);

    // singleEvents=false: the master plus the exception item.
    let (_, plain) = hub.events().list("primary").doit().await.unwrap();
    let plain = plain.items.unwrap();
    assert_eq!(
        plain.iter().map(|e| e.id.clone().unwrap()).collect::<BTreeSet<_>>(),
        BTreeSet::from([master_id.clone(), second_id.clone()])
    );
    let exception = plain
        .iter()
        .find(|e| e.id.as_deref() == Some(second_id.as_str()))
        .unwrap();
    assert_eq!(exception.recurring_event_id.as_deref(), Some(master_id.as_str()));
    assert!(exception.original_start_time.is_some());

    // An instance cannot get a rule of its own.
    let err = hub
        .events()
        .patch(
            Event {
                recurrence: Some(vec!["RRULE:FREQ=DAILY".into()]),
                ..Event::default()
            },
            "primary",
            &second_id,
        )
        .doit()
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::google_error_body(&err)["error"]["code"], 400);
}

#[tokio::test]
async fn a_cancelled_instance_is_a_tombstone_in_full_and_incremental_lists_and_hidden_from_single_events() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let master = id_of(&google.insert(&t, "primary", weekly_berlin(4)).await);
    let (_, plain_token) = list(&google, &t, &[]).await;
    let (_, single_token) = list(&google, &t, &[("singleEvents", "true")]).await;
    let third = format!("{master}_20250317T080000Z");

    let deleted = send(&google, Method::DELETE, &format!("{EVENTS}/{third}"), &t, None).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let again = send(&google, Method::DELETE, &format!("{EVENTS}/{third}"), &t, None).await;
    assert_eq!((again.status, reason(&again)), (410, "deleted"));
    let patch = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{third}"),
        &t,
        Some(json!({"summary": "x"})),
    )
    .await;
    assert_eq!(patch.status, 410);
    let got = google.get(&format!("{EVENTS}/{third}"), &t).await;
    assert_eq!((got.status, got.body["status"].as_str()), (200, Some("cancelled")));

    let tombstone = json!({"kind": "calendar#event", "id": third, "status": "cancelled",
        "recurringEventId": master,
        "originalStartTime": {"dateTime": "2025-03-17T09:00:00+01:00", "timeZone": "Europe/Berlin"}});
    let strip_etag = |mut v: Value| {
        assert!(v["etag"].is_string());
        v.as_object_mut().unwrap().remove("etag");
        v
    };
    // Incremental, both modes: exactly the cancelled occurrence.
    for token in [&plain_token, &single_token] {
        let pairs: Vec<(&str, &str)> = if token == &single_token {
            vec![("syncToken", token.as_str()), ("singleEvents", "true")]
        } else {
            vec![("syncToken", token.as_str())]
        };
        let (changed, _) = list(&google, &t, &pairs).await;
        assert_eq!(
            changed.into_iter().map(strip_etag).collect::<Vec<_>>(),
            vec![tombstone.clone()]
        );
    }
    // Full listing, singleEvents=false: as Google documents for showDeleted, cancelled
    // instances of a series are listed even without showDeleted.
    let (plain, _) = list(&google, &t, &[]).await;
    assert_eq!(ids(&plain), vec![master.clone(), third.clone()]);
    assert_eq!(plain[1]["status"], "cancelled");
    // singleEvents=true: hidden, unless showDeleted.
    let (singles, _) = list(&google, &t, &[("singleEvents", "true")]).await;
    assert_eq!(singles.len(), 3);
    assert!(!ids(&singles).contains(&third));
    let (with_deleted, _) = list(&google, &t, &[("singleEvents", "true"), ("showDeleted", "true")]).await;
    assert_eq!(with_deleted.len(), 4);
    let shown = with_deleted.iter().find(|i| i["id"] == third.as_str()).unwrap();
    assert_eq!(shown["status"], "cancelled");
    // instances: hidden, unless showDeleted.
    assert_eq!(instances(&google, &t, &master, &[]).await.len(), 3);
    let all = instances(&google, &t, &master, &[("showDeleted", "true")]).await;
    assert_eq!(ids(&all)[2], third);
    assert_eq!(all[2]["status"], "cancelled");
}

#[tokio::test]
async fn instances_pages_with_page_tokens_are_stable_while_an_instance_changes_between_pages() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let master = id_of(&google.insert(&t, "primary", weekly_berlin(10)).await);
    let path = format!("{EVENTS}/{master}/instances");
    let first = google.get(&format!("{path}?maxResults=3"), &t).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["kind"], "calendar#events");
    assert!(
        first.body.get("nextSyncToken").is_none(),
        "instances have no sync token"
    );
    let mut seen = ids(first.body["items"].as_array().unwrap());
    let mut page = first.body["nextPageToken"].as_str().unwrap().to_owned();
    // Between pages, a later occurrence moves to the front of the series' time range and
    // an earlier one is cancelled: paging follows original starts, so nothing is served
    // twice or skipped.
    let moved = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{master}_20250414T070000Z"),
        &t,
        Some(
            json!({"start": {"dateTime": "2025-03-01T09:00:00+01:00", "timeZone": "Europe/Berlin"},
                    "end": {"dateTime": "2025-03-01T10:00:00+01:00", "timeZone": "Europe/Berlin"}}),
        ),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    let cancelled = send(
        &google,
        Method::DELETE,
        &format!("{EVENTS}/{master}_20250310T080000Z"),
        &t,
        None,
    )
    .await;
    assert_eq!(cancelled.status, 204);
    loop {
        let a = google.get(&format!("{path}?maxResults=3&pageToken={page}"), &t).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        seen.extend(ids(a.body["items"].as_array().unwrap()));
        match a.body["nextPageToken"].as_str() {
            Some(p) => page = p.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 10, "no duplicates");
    assert_eq!(seen[6], format!("{master}_20250414T070000Z"), "in original start order");

    let other_query = google
        .get(&format!("{path}?maxResults=3&showDeleted=true&pageToken={page}"), &t)
        .await;
    assert_eq!(other_query.status, 400, "a page token belongs to its query");
    let unknown = google.get(&format!("{EVENTS}/nosuchevent/instances"), &t).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn an_instance_change_moves_the_sync_position_and_notifies_watchers() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&t);
    let receiver = Receiver::start().await;
    let master = id_of(&google.insert(&t, "primary", weekly_berlin(4)).await);
    let (_, token) = list(&google, &t, &[]).await;
    hub.events()
        .watch(
            Channel {
                id: Some("instances-channel".into()),
                type_: Some("web_hook".into()),
                address: Some(receiver.address()),
                ..Channel::default()
            },
            "primary",
        )
        .doit()
        .await
        .unwrap();
    receiver.wait_for_count(1).await;
    let second = format!("{master}_20250310T080000Z");
    let patched = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{second}"),
        &t,
        Some(json!({"summary": "moved"})),
    )
    .await;
    assert_eq!(patched.status, 200);
    let got = receiver.wait_for_count(2).await;
    assert_eq!(got[1].state(), "exists");

    let (changed, next) = list(&google, &t, &[("syncToken", &token)]).await;
    assert_eq!(ids(&changed), vec![second.clone()]);
    assert_eq!(changed[0]["summary"], "moved");
    assert_eq!(changed[0]["recurringEventId"], master.as_str());
    assert_eq!(changed[0]["etag"], patched.body["etag"]);
    let (nothing, _) = list(&google, &t, &[("syncToken", &next)]).await;
    assert!(nothing.is_empty());

    let updated = send(
        &google,
        Method::PUT,
        &format!("{EVENTS}/{second}"),
        &t,
        Some(json!({"summary": "replaced",
            "start": {"dateTime": "2025-03-10T11:00:00+01:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2025-03-10T12:00:00+01:00", "timeZone": "Europe/Berlin"}})),
    )
    .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_ne!(updated.body["etag"], patched.body["etag"]);
    assert_eq!(updated.body["sequence"], 1, "a time change bumps sequence");
    assert_eq!(
        updated.body["originalStartTime"]["dateTime"],
        "2025-03-10T09:00:00+01:00"
    );
    receiver.wait_for_count(3).await;
    let (changed, _) = list(&google, &t, &[("syncToken", &next)]).await;
    assert_eq!(ids(&changed), vec![second]);
    assert_eq!(changed[0]["summary"], "replaced");
}

/// Every instance's local start time in `zone` and its id suffix.
fn local_starts(items: &[Value], zone: Tz) -> Vec<(NaiveTime, String)> {
    items
        .iter()
        .map(|i| {
            let start = DateTime::parse_from_rfc3339(i["start"]["dateTime"].as_str().unwrap()).unwrap();
            let suffix = i["id"].as_str().unwrap().rsplit_once('_').unwrap().1.to_owned();
            (start.with_timezone(&zone).time(), suffix)
        })
        .collect()
}

#[tokio::test]
async fn series_expand_in_their_zone_across_dst_in_berlin_kiritimati_and_st_johns() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    // Weekly on Mondays, 2025-03-17 to 2025-11-03: over both Berlin DST changes.
    let master = id_of(
        &google
            .insert(
                &t,
                "primary",
                json!({"summary": "berlin",
                    "start": {"dateTime": "2025-03-17T09:00:00+01:00", "timeZone": "Europe/Berlin"},
                    "end": {"dateTime": "2025-03-17T10:00:00+01:00", "timeZone": "Europe/Berlin"},
                    "recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20251103T235959Z"]}),
            )
            .await,
    );
    let berlin = local_starts(&instances(&google, &t, &master, &[]).await, chrono_tz::Europe::Berlin);
    assert_eq!(berlin.len(), 34);
    assert!(berlin.iter().all(|(time, _)| *time == nine), "{berlin:?}");
    let suffixes: Vec<&str> = berlin.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(suffixes[1], "20250324T080000Z", "CET");
    assert_eq!(suffixes[2], "20250331T070000Z", "CEST after 2025-03-30");
    assert_eq!(suffixes[31], "20251020T070000Z", "CEST");
    assert_eq!(suffixes[32], "20251027T080000Z", "CET after 2025-10-26");
    let october = google.get(&format!("{EVENTS}/{master}_20251027T080000Z"), &t).await;
    assert_eq!(october.body["start"]["dateTime"], "2025-10-27T09:00:00+01:00");

    // UTC+14: 09:00 local is 19:00 UTC the day before, and the id says so.
    let kiritimati = id_of(
        &google
            .insert(
                &t,
                "primary",
                json!({"summary": "kiritimati",
                    "start": {"dateTime": "2025-03-03T09:00:00", "timeZone": "Pacific/Kiritimati"},
                    "end": {"dateTime": "2025-03-03T10:00:00", "timeZone": "Pacific/Kiritimati"},
                    "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]}),
            )
            .await,
    );
    let items = instances(&google, &t, &kiritimati, &[]).await;
    assert_eq!(
        local_starts(&items, chrono_tz::Pacific::Kiritimati),
        vec![
            (nine, "20250302T190000Z".to_owned()),
            (nine, "20250303T190000Z".to_owned()),
            (nine, "20250304T190000Z".to_owned())
        ]
    );
    assert_eq!(items[0]["start"]["dateTime"], "2025-03-03T09:00:00+14:00");

    // Newfoundland, UTC−3:30 then −2:30 from 2025-03-09.
    let st_johns = id_of(
        &google
            .insert(
                &t,
                "primary",
                json!({"summary": "st johns",
                    "start": {"dateTime": "2025-03-07T09:00:00-03:30", "timeZone": "America/St_Johns"},
                    "end": {"dateTime": "2025-03-07T09:30:00-03:30", "timeZone": "America/St_Johns"},
                    "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"]}),
            )
            .await,
    );
    let items = instances(&google, &t, &st_johns, &[]).await;
    assert_eq!(
        local_starts(&items, chrono_tz::America::St_Johns),
        vec![
            (nine, "20250307T123000Z".to_owned()),
            (nine, "20250308T123000Z".to_owned()),
            (nine, "20250309T113000Z".to_owned()),
            (nine, "20250310T113000Z".to_owned())
        ]
    );
    let moved = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{st_johns}_20250309T113000Z"),
        &t,
        Some(json!({"summary": "after the change"})),
    )
    .await;
    assert_eq!(moved.status, 200, "{:?}", moved.body);
    assert_eq!(moved.body["originalStartTime"]["dateTime"], "2025-03-09T09:00:00-02:30");
}

#[tokio::test]
async fn changing_the_master_drops_exceptions_off_its_occurrences_and_deleting_it_cancels_them_all() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let master = id_of(&google.insert(&t, "primary", weekly_berlin(4)).await);
    let second = format!("{master}_20250310T080000Z");
    let third = format!("{master}_20250317T080000Z");
    let p = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{second}"),
        &t,
        Some(json!({"summary": "kept?"})),
    )
    .await;
    assert_eq!(p.status, 200);
    let d = send(&google, Method::DELETE, &format!("{EVENTS}/{third}"), &t, None).await;
    assert_eq!(d.status, 204);

    // A change that keeps the occurrences keeps the exceptions.
    let (_, token) = list(&google, &t, &[]).await;
    let retitled = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{master}"),
        &t,
        Some(json!({"summary": "renamed"})),
    )
    .await;
    assert_eq!(retitled.status, 200);
    let (changed, token) = list(&google, &t, &[("syncToken", &token)]).await;
    assert_eq!(ids(&changed), vec![master.clone()]);
    let kept = instances(&google, &t, &master, &[]).await;
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[1]["summary"], "kept?");

    // Moving the series an hour: no exception falls on an occurrence any more.
    let moved = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{master}"),
        &t,
        Some(
            json!({"start": {"dateTime": "2025-03-03T10:00:00+01:00", "timeZone": "Europe/Berlin"},
                    "end": {"dateTime": "2025-03-03T11:00:00+01:00", "timeZone": "Europe/Berlin"}}),
        ),
    )
    .await;
    assert_eq!(moved.status, 200);
    let (changed, _) = list(&google, &t, &[("syncToken", &token)]).await;
    assert_eq!(
        ids(&changed),
        vec![second.clone(), master.clone()],
        "tombstone first, then the master"
    );
    assert_eq!(changed[0]["status"], "cancelled");
    assert_eq!(changed[0]["recurringEventId"], master.as_str());
    let after = instances(&google, &t, &master, &[("showDeleted", "true")]).await;
    assert_eq!(after.len(), 4);
    assert!(after
        .iter()
        .all(|i| i["summary"] == "renamed" && i["status"] == "confirmed"));
    assert_eq!(id_of(&after[1]), format!("{master}_20250310T090000Z"));
    assert_eq!(google.get(&format!("{EVENTS}/{second}"), &t).await.status, 404);
    let (plain, _) = list(&google, &t, &[]).await;
    assert_eq!(
        ids(&plain),
        vec![master.clone()],
        "dropped exceptions leave the full listing"
    );

    // Deleting the master cancels its instances.
    let p = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{master}_20250324T090000Z"),
        &t,
        Some(json!({"summary": "last"})),
    )
    .await;
    assert_eq!(p.status, 200);
    let (_, token2) = list(&google, &t, &[]).await;
    let (_, single_token) = list(&google, &t, &[("singleEvents", "true")]).await;
    let gone = send(&google, Method::DELETE, &format!("{EVENTS}/{master}"), &t, None).await;
    assert_eq!(gone.status, 204);
    let (changed, _) = list(&google, &t, &[("syncToken", &token2)]).await;
    assert_eq!(
        ids(&changed).into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([master.clone(), format!("{master}_20250324T090000Z")])
    );
    assert!(changed.iter().all(|i| i["status"] == "cancelled"));
    // With singleEvents, a deleted series is its occurrences' tombstones, not the master.
    let every_occurrence: BTreeSet<String> = ["20250303", "20250310", "20250317", "20250324"]
        .iter()
        .map(|d| format!("{master}_{d}T090000Z"))
        .collect();
    let (changed, _) = list(&google, &t, &[("syncToken", &single_token), ("singleEvents", "true")]).await;
    assert_eq!(changed.len(), 4, "{changed:?}");
    assert_eq!(ids(&changed).into_iter().collect::<BTreeSet<_>>(), every_occurrence);
    assert!(changed
        .iter()
        .all(|i| i["status"] == "cancelled" && i["recurringEventId"] == master.as_str()));
    let (shown, _) = list(&google, &t, &[("singleEvents", "true"), ("showDeleted", "true")]).await;
    assert_eq!(ids(&shown).into_iter().collect::<BTreeSet<_>>(), every_occurrence);
    let instance = google.get(&format!("{EVENTS}/{master}_20250310T090000Z"), &t).await;
    assert_eq!(
        (instance.status, instance.body["status"].as_str()),
        (200, Some("cancelled"))
    );
    let listing = google.get(&format!("{EVENTS}/{master}/instances"), &t).await;
    assert_eq!((listing.status, reason(&listing)), (410, "deleted"));
    let (plain, _) = list(&google, &t, &[]).await;
    assert!(plain.is_empty(), "{plain:?}");
}

#[tokio::test]
async fn this_and_following_splits_the_series_like_the_google_ui_through_the_control_route_and_the_cli() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let receiver = Receiver::start().await;
    let master = id_of(&google.insert(&t, "primary", weekly_berlin(6)).await);
    let early = format!("{master}_20250310T080000Z");
    let late = format!("{master}_20250324T080000Z");
    let cancelled = format!("{master}_20250331T070000Z");
    assert_eq!(
        send(
            &google,
            Method::PATCH,
            &format!("{EVENTS}/{early}"),
            &t,
            Some(json!({"summary": "early"}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(
            &google,
            Method::PATCH,
            &format!("{EVENTS}/{late}"),
            &t,
            Some(json!({"summary": "late"}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(&google, Method::DELETE, &format!("{EVENTS}/{cancelled}"), &t, None)
            .await
            .status,
        204
    );
    let before: Vec<String> = instances(&google, &t, &master, &[("showDeleted", "true")])
        .await
        .iter()
        .map(|i| i["originalStartTime"]["dateTime"].as_str().unwrap().to_owned())
        .collect();
    let (_, token) = list(&google, &t, &[]).await;
    google
        .hub_with_token(&t)
        .events()
        .watch(
            Channel {
                id: Some("split-channel".into()),
                type_: Some("web_hook".into()),
                address: Some(receiver.address()),
                ..Channel::default()
            },
            "primary",
        )
        .doit()
        .await
        .unwrap();
    receiver.wait_for_count(1).await;

    let split_path = format!("/calendars/ann@example.com/events/{master}/split");
    let first = google
        .control(&split_path, json!({"original_start": "2025-03-03T09:00:00+01:00"}))
        .await;
    assert_eq!(first.status, 400, "the first occurrence cannot start a new series");
    let off = google
        .control(&split_path, json!({"original_start": "2025-03-18T09:00:00+01:00"}))
        .await;
    assert_eq!(off.status, 404, "not an occurrence");
    let split = google
        .control(
            &split_path,
            json!({"original_start": "2025-03-17T09:00:00+01:00", "changes": {"location": "Room 2"}}),
        )
        .await;
    assert_eq!(split.status, 200, "{:?}", split.body);
    let series = format!("{master}_R20250317T080000");
    assert_eq!(split.body["series"]["id"], series.as_str());
    assert_eq!(
        split.body["master"]["recurrence"],
        json!(["RRULE:FREQ=WEEKLY;UNTIL=20250317T075959Z"])
    );
    assert_eq!(
        split.body["series"]["recurrence"],
        json!(["RRULE:FREQ=WEEKLY;UNTIL=20250407T070000Z"])
    );
    assert_eq!(split.body["series"]["start"]["dateTime"], "2025-03-17T09:00:00+01:00");
    assert_eq!(split.body["series"]["location"], "Room 2");
    assert_eq!(split.body["exceptions_moved"], 2);
    let again = google
        .control(&split_path, json!({"original_start": "2025-03-17T09:00:00+01:00"}))
        .await;
    assert_eq!(again.status, 404, "no longer an occurrence of the truncated master");

    // Watchers hear of it; incremental sync carries both series and the moved exceptions.
    let got = receiver.wait_for_count(2).await;
    assert_eq!(got[1].state(), "exists");
    let (changed, _) = list(&google, &t, &[("syncToken", &token)]).await;
    let new_late = format!("{series}_20250324T080000Z");
    let new_cancelled = format!("{series}_20250331T070000Z");
    assert_eq!(
        ids(&changed),
        vec![
            late.clone(),
            master.clone(),
            series.clone(),
            new_late.clone(),
            new_cancelled.clone()
        ]
    );
    // The old exception's id is gone (its cancelled sibling was served as cancelled already).
    assert_eq!(changed[0]["status"], "cancelled");
    assert_eq!(changed[3]["summary"], "late");
    assert_eq!(changed[3]["recurringEventId"], series.as_str());
    assert_eq!(changed[4]["status"], "cancelled");
    assert_eq!(changed[4]["recurringEventId"], series.as_str());

    // Every occurrence is accounted for once, in one part or the other.
    let old_part = instances(&google, &t, &master, &[("showDeleted", "true")]).await;
    let new_part = instances(&google, &t, &series, &[("showDeleted", "true")]).await;
    assert_eq!(
        ids(&old_part),
        vec![format!("{master}_20250303T080000Z"), early.clone()]
    );
    assert_eq!(old_part[1]["summary"], "early");
    assert_eq!(new_part.len(), 4);
    assert_eq!(new_part[1]["summary"], "late");
    assert_eq!(new_part[2]["status"], "cancelled");
    assert_eq!(new_part[3]["location"], "Room 2");
    let after: Vec<String> = old_part
        .iter()
        .chain(new_part.iter())
        .map(|i| i["originalStartTime"]["dateTime"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after, before);
    let (plain, _) = list(&google, &t, &[]).await;
    assert_eq!(
        ids(&plain),
        vec![
            master.clone(),
            early.clone(),
            series.clone(),
            new_late.clone(),
            new_cancelled
        ]
    );

    // `slotsync emulator split` does the same through the control route.
    slotsync::emulator::run_split(slotsync::emulator::SplitArgs {
        url: google.base_url(),
        email: "ann@example.com".into(),
        calendar: None,
        event: series.clone(),
        at: "20250331T070000Z".into(),
        title: Some("April".into()),
        changes: None,
    })
    .await
    .unwrap();
    let third = format!("{series}_R20250331T070000");
    let third_part = instances(&google, &t, &third, &[("showDeleted", "true")]).await;
    assert_eq!(third_part.len(), 2);
    assert_eq!(
        third_part[0]["status"], "cancelled",
        "the cancelled occurrence moved along"
    );
    assert_eq!(third_part[1]["summary"], "April");
    assert_eq!(instances(&google, &t, &series, &[]).await.len(), 2);
}

#[tokio::test]
async fn all_day_series_take_exceptions_cancellations_and_a_split_by_date() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let hub = google.hub_with_token(&t);
    let master = id_of(
        &google
            .insert(
                &t,
                "primary",
                json!({"summary": "fasting day", "start": {"date": "2025-03-27"}, "end": {"date": "2025-03-28"},
                    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"]}),
            )
            .await,
    );
    let (_, token) = list(&google, &t, &[]).await;
    let second = format!("{master}_20250403");
    let first_patch = send(
        &google,
        Method::PATCH,
        &format!("{EVENTS}/{second}"),
        &t,
        Some(json!({"summary": "x"})),
    )
    .await;
    assert_eq!(first_patch.status, 200);
    let conflict = google
        .send(
            Method::PATCH,
            &format!("{EVENTS}/{second}"),
            Some(&t),
            Some(json!({"summary": "y"})),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!((conflict.status, reason(&conflict)), (412, "conditionNotMet"));
    let two_days = google
        .send(
            Method::PATCH,
            &format!("{EVENTS}/{second}"),
            Some(&t),
            Some(json!({"summary": "long fast", "end": {"date": "2025-04-05"}})),
            &[("If-Match", first_patch.body["etag"].as_str().unwrap())],
        )
        .await;
    assert_eq!(two_days.status, 200, "{:?}", two_days.body);
    assert_eq!(two_days.body["originalStartTime"], json!({"date": "2025-04-03"}));
    hub.events()
        .delete("primary", &format!("{master}_20250410"))
        .doit()
        .await
        .unwrap();

    let (changed, _) = list(&google, &t, &[("syncToken", &token)]).await;
    assert_eq!(ids(&changed), vec![second.clone(), format!("{master}_20250410")]);
    assert_eq!(changed[1]["originalStartTime"], json!({"date": "2025-04-10"}));
    let (singles, _) = list(&google, &t, &[("singleEvents", "true"), ("orderBy", "startTime")]).await;
    assert_eq!(
        singles
            .iter()
            .map(|i| (i["start"]["date"].as_str().unwrap(), i["end"]["date"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![
            ("2025-03-27", "2025-03-28"),
            ("2025-04-03", "2025-04-05"),
            ("2025-04-17", "2025-04-18"),
            ("2025-04-24", "2025-04-25")
        ]
    );
    let (_, only) = hub
        .events()
        .instances("primary", &master)
        .original_start("2025-04-03")
        .doit()
        .await
        .unwrap();
    assert_eq!(only.items.unwrap()[0].summary.as_deref(), Some("long fast"));

    let split = google
        .control(
            &format!("/calendars/ann@example.com/events/{master}/split"),
            json!({"original_start": "2025-04-10"}),
        )
        .await;
    assert_eq!(split.status, 200, "{:?}", split.body);
    let series = format!("{master}_R20250410");
    assert_eq!(split.body["series"]["id"], series.as_str());
    assert_eq!(split.body["series"]["start"], json!({"date": "2025-04-10"}));
    assert_eq!(
        split.body["master"]["recurrence"],
        json!(["RRULE:FREQ=WEEKLY;UNTIL=20250409"])
    );
    assert_eq!(
        split.body["series"]["recurrence"],
        json!(["RRULE:FREQ=WEEKLY;UNTIL=20250424"])
    );
    assert_eq!(
        ids(&instances(&google, &t, &master, &[]).await),
        vec![format!("{master}_20250327"), second]
    );
    assert_eq!(
        ids(&instances(&google, &t, &series, &[("showDeleted", "true")]).await),
        vec![
            format!("{series}_20250410"),
            format!("{series}_20250417"),
            format!("{series}_20250424")
        ]
    );
}
