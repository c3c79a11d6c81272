//! events.list over raw HTTP: sync tokens, tombstones, pagination, filters, recurrence.

use crate::helpers::{reason, timed_event, Answer, TestGoogle};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

async fn list(google: &TestGoogle, token: &str, query: &[(&str, &str)]) -> Answer {
    let q = serde_urlencoded_pairs(query);
    google.get(&format!("{EVENTS}?{q}"), token).await
}

fn serde_urlencoded_pairs(query: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish()
}

/// Lists every page; returns the items and the final sync token.
async fn list_all(google: &TestGoogle, token: &str, query: &[(&str, &str)]) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if let Some(p) = &page {
            q.push(("pageToken", p));
        }
        let a = list(google, token, &q).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let has_page = a.body.get("nextPageToken").is_some();
        let has_sync = a.body.get("nextSyncToken").is_some();
        assert!(has_page != has_sync, "exactly one of nextPageToken/nextSyncToken");
        items.extend(a.body["items"].as_array().unwrap().iter().cloned());
        match a.body["nextPageToken"].as_str() {
            Some(p) => page = Some(p.to_owned()),
            None => return (items, a.body["nextSyncToken"].as_str().unwrap().to_owned()),
        }
    }
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items.iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn full_then_incremental_sync_shows_changes_and_minimal_tombstones_then_410_after_invalidation() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let mut created = Vec::new();
    for day in 1..=5 {
        created.push(
            google.insert(&t, "primary", timed_event("e", day, 9)).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (items, token) = list_all(&google, &t, &[("maxResults", "2")]).await;
    assert_eq!(ids(&items), created.iter().cloned().collect());

    let changed = &created[0];
    let deleted = &created[1];
    google
        .send(
            Method::PATCH,
            &format!("{EVENTS}/{changed}"),
            Some(&t),
            Some(json!({"summary": "changed"})),
            &[],
        )
        .await;
    google
        .send(Method::DELETE, &format!("{EVENTS}/{deleted}"), Some(&t), None, &[])
        .await;
    let new = google.insert(&t, "primary", timed_event("new", 9, 9)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (delta, token2) = list_all(&google, &t, &[("syncToken", &token), ("maxResults", "1")]).await;
    assert_eq!(
        ids(&delta),
        [changed.clone(), deleted.clone(), new.clone()].into_iter().collect()
    );
    let tombstone = delta.iter().find(|i| i["id"] == deleted.as_str()).unwrap();
    let keys: BTreeSet<&str> = tombstone.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["etag", "id", "kind", "status"].into_iter().collect());
    assert_eq!(tombstone["status"], "cancelled");
    assert_eq!(
        delta.iter().find(|i| i["id"] == changed.as_str()).unwrap()["summary"],
        "changed"
    );

    let (empty, token3) = list_all(&google, &t, &[("syncToken", &token2)]).await;
    assert!(empty.is_empty(), "an empty increment");
    google.insert(&t, "primary", timed_event("later", 10, 9)).await;
    let (after, _) = list_all(&google, &t, &[("syncToken", &token3)]).await;
    assert_eq!(after.len(), 1, "the token of an empty increment is usable");

    let inv = google
        .control("/sync-tokens/invalidate", json!({"calendar_id": "ann@example.com"}))
        .await;
    assert_eq!(inv.status, 200);
    let gone = list(&google, &t, &[("syncToken", &token3)]).await;
    assert_eq!(gone.status, 410);
    assert_eq!(
        gone.body["error"]["errors"][0],
        json!({"domain": "calendar", "reason": "fullSyncRequired",
        "message": "Sync token is no longer valid, a full sync is required.", "locationType": "parameter", "location": "syncToken"})
    );
    let unknown = list(&google, &t, &[("syncToken", "garbage")]).await;
    assert_eq!((unknown.status, reason(&unknown)), (410, "fullSyncRequired"));
    let (full, _) = list_all(&google, &t, &[]).await;
    assert!(!ids(&full).contains(deleted), "a full listing carries no tombstones");
}

#[tokio::test]
async fn parameters_forbidden_with_a_sync_token_are_400() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let (_, token) = list_all(&google, &t, &[]).await;
    for (name, value) in [
        ("iCalUID", "x@google.com"),
        ("orderBy", "updated"),
        ("privateExtendedProperty", "a=b"),
        ("q", "x"),
        ("sharedExtendedProperty", "a=b"),
        ("timeMin", "2025-01-01T00:00:00Z"),
        ("timeMax", "2025-01-01T00:00:00Z"),
        ("updatedMin", "2025-01-01T00:00:00Z"),
        ("showDeleted", "false"),
    ] {
        let a = list(&google, &t, &[("syncToken", &token), (name, value)]).await;
        assert_eq!(a.status, 400, "{name}");
        assert_eq!(a.body["error"]["errors"][0]["location"], name);
    }
    assert_eq!(
        list(
            &google,
            &t,
            &[("syncToken", &token), ("showDeleted", "true"), ("singleEvents", "true")]
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn incremental_pages_stay_stable_when_changes_land_between_pages() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let (_, token) = list_all(&google, &t, &[]).await;
    let mut changed = BTreeSet::new();
    for day in 1..=6 {
        changed.insert(
            google.insert(&t, "primary", timed_event("e", day, 9)).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let first = list(&google, &t, &[("syncToken", &token), ("maxResults", "3")]).await;
    let page = first.body["nextPageToken"].as_str().unwrap().to_owned();
    let late = google.insert(&t, "primary", timed_event("late", 20, 9)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = list(
        &google,
        &t,
        &[("syncToken", &token), ("maxResults", "3"), ("pageToken", &page)],
    )
    .await;
    let mut seen = ids(first.body["items"].as_array().unwrap());
    seen.extend(ids(second.body["items"].as_array().unwrap()));
    assert_eq!(seen, changed, "exactly the changes before the listing started");
    let next = second.body["nextSyncToken"].as_str().unwrap();
    let (delta, _) = list_all(&google, &t, &[("syncToken", next)]).await;
    assert_eq!(
        ids(&delta),
        [late].into_iter().collect(),
        "the late change comes with the next increment"
    );
    let wrong = list(&google, &t, &[("pageToken", "CPnonsense")]).await;
    assert_eq!(wrong.status, 400);
}

#[tokio::test]
async fn max_results_defaults_to_250_and_is_capped_at_2500() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    for i in 0..260u32 {
        google
            .insert(&t, "primary", timed_event("e", 1 + i % 28, 1 + i % 20))
            .await;
    }
    let first = list(&google, &t, &[]).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 250);
    assert!(first.body["nextPageToken"].is_string());
    let big = list(&google, &t, &[("maxResults", "5000")]).await;
    assert_eq!(big.body["items"].as_array().unwrap().len(), 260);
    assert!(big.body["nextSyncToken"].is_string());
    assert_eq!(list(&google, &t, &[("maxResults", "0")]).await.status, 400);
}

#[tokio::test]
async fn time_range_extended_property_show_deleted_and_updated_min_filter_the_listing() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let mut tagged = timed_event("tagged", 3, 9);
    tagged["extendedProperties"] = json!({"private": {"slotsync_slot": "s1", "slotsync_origin": "o"}});
    let tagged = google.insert(&t, "primary", tagged).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let early = google.insert(&t, "primary", timed_event("early", 1, 9)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = google.insert(&t, "primary", timed_event("gone", 5, 9)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    google
        .send(Method::DELETE, &format!("{EVENTS}/{gone}"), Some(&t), None, &[])
        .await;

    let (range, _) = list_all(
        &google,
        &t,
        &[("timeMin", "2025-03-01T10:00:00Z"), ("timeMax", "2025-03-05T00:00:00Z")],
    )
    .await;
    assert_eq!(
        ids(&range),
        [tagged.clone()].into_iter().collect(),
        "timeMin bounds the end exclusively"
    );
    let (props, _) = list_all(
        &google,
        &t,
        &[
            ("privateExtendedProperty", "slotsync_slot=s1"),
            ("privateExtendedProperty", "slotsync_origin=o"),
        ],
    )
    .await;
    assert_eq!(ids(&props), [tagged.clone()].into_iter().collect());
    let (none, _) = list_all(
        &google,
        &t,
        &[
            ("privateExtendedProperty", "slotsync_slot=s1"),
            ("privateExtendedProperty", "slotsync_origin=other"),
        ],
    )
    .await;
    assert!(none.is_empty(), "all properties must match");
    let (visible, _) = list_all(&google, &t, &[]).await;
    assert_eq!(ids(&visible), [tagged.clone(), early.clone()].into_iter().collect());
    let (with_deleted, _) = list_all(&google, &t, &[("showDeleted", "true")]).await;
    assert!(ids(&with_deleted).contains(&gone));
    let (q, _) = list_all(&google, &t, &[("q", "EARL")]).await;
    assert_eq!(ids(&q), [early].into_iter().collect());
    let empty_range = list(
        &google,
        &t,
        &[("timeMin", "2025-03-02T00:00:00Z"), ("timeMax", "2025-03-01T00:00:00Z")],
    )
    .await;
    assert_eq!((empty_range.status, reason(&empty_range)), (400, "timeRangeEmpty"));
    let bad_order = list(&google, &t, &[("orderBy", "startTime")]).await;
    assert_eq!(bad_order.status, 400, "startTime ordering needs singleEvents");
}

#[tokio::test]
async fn single_events_expands_rrules_over_the_requested_range_in_start_order() {
    let google = TestGoogle::start().await;
    let t = google.user_token("ann@example.com").await;
    let master = google
        .insert(
            &t,
            "primary",
            json!({"summary": "weekly",
        "start": {"dateTime": "2025-03-03T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2025-03-03T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=10", "EXDATE;TZID=Europe/Berlin:20250317T090000"]}),
        )
        .await;
    let master_id = master["id"].as_str().unwrap();
    google.insert(&t, "primary", timed_event("single", 12, 12)).await;
    let (items, _) = list_all(
        &google,
        &t,
        &[
            ("singleEvents", "true"),
            ("orderBy", "startTime"),
            ("timeMin", "2025-03-01T00:00:00Z"),
            ("timeMax", "2025-04-01T00:00:00Z"),
        ],
    )
    .await;
    let summary: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["start"]["dateTime"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                format!("{master_id}_20250303T080000Z"),
                "2025-03-03T09:00:00+01:00".to_owned()
            ),
            (
                format!("{master_id}_20250310T080000Z"),
                "2025-03-10T09:00:00+01:00".to_owned()
            ),
            (
                items[2]["id"].as_str().unwrap().to_owned(),
                "2025-03-12T12:00:00Z".to_owned()
            ),
            (
                format!("{master_id}_20250324T080000Z"),
                "2025-03-24T09:00:00+01:00".to_owned()
            ),
            (
                format!("{master_id}_20250331T070000Z"),
                "2025-03-31T09:00:00+02:00".to_owned()
            ),
        ]
    );
    // 09:00 local across the DST switch: the last instance is 07:00Z.
    assert_eq!(items[0]["recurringEventId"], master_id);
    assert_eq!(items[0]["originalStartTime"]["dateTime"], "2025-03-03T09:00:00+01:00");
    assert!(items[0].get("recurrence").is_none());
    let (masters, _) = list_all(
        &google,
        &t,
        &[("timeMin", "2025-03-01T00:00:00Z"), ("timeMax", "2025-04-01T00:00:00Z")],
    )
    .await;
    assert_eq!(masters.len(), 2, "without singleEvents the series is one master");
}
