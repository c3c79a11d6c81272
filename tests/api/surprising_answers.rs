//! Google's surprising answers, handled as Google means them (GOOGLE_WIRE "Answers that
//! surprise clients"), with the service and the emulator over HTTP: a 404 that goes away,
//! 403 where 410 was meant, a 410 on a listing whose reason is not `fullSyncRequired`,
//! and the deployment's OAuth client refused at the token endpoint.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use slotsync_testkit::{sync_state, SyncState};

use crate::helpers::{event_id_of, slot_body, spawn_app_with_google_and, wait_until, ConnectedApp, TestUser};

const EMAIL: &str = "ada@example.com";

/// A service whose 404 confirmations are quick.
async fn service() -> ConnectedApp {
    spawn_app_with_google_and(|s| {
        s.google_not_found_retries = 3;
        s.google_not_found_retry_ms = 10;
    })
    .await
}

/// The live events slotsync wrote for `slot` (by `slotsync_slot`), in Google.
async fn live_events_of(ctx: &ConnectedApp, slot: &Value) -> Vec<Value> {
    ctx.google
        .events(EMAIL)
        .await
        .into_iter()
        .filter(|e| slotsync_testkit::google::tagged_slot(e) == slot["id"].as_str())
        .filter(|e| !slotsync_testkit::google::cancelled(e))
        .collect()
}

async fn pushed_slot(ctx: &ConnectedApp, user: &TestUser, title: &str) -> Value {
    let slot = ctx
        .app
        .create_slot(user, &slot_body(title, "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    slot
}

async fn edit(ctx: &ConnectedApp, user: &TestUser, slot: &Value, title: &str) {
    let body = slot_body(title, "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z");
    let resp = ctx.app.put_slot(user, slot["id"].as_str().unwrap(), &body, None).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_transient_404_on_a_known_event_is_asked_again_and_never_duplicates_or_strands_it() {
    let ctx = service().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed_slot(&ctx, &user, "v1").await;
    let id = slot["id"].as_str().unwrap();
    let ops = ["events.get", "events.patch", "events.update", "events.delete"];
    ctx.google
        .faults(json!({"transient_404": {"times": 2, "ops": ops}}))
        .await;

    // The edit's patch is answered 404 twice: asked again, it goes through — the event is
    // not taken for deleted and created a second time.
    edit(&ctx, &user, &slot, "v2").await;
    ctx.app.wait_until_pushed(id).await;
    let stats = ctx.google.stats().await;
    assert_eq!(stats.fault_count("events.patch", "transient_404"), 2, "{stats}");
    let live = live_events_of(&ctx, &slot).await;
    assert_eq!(live.len(), 1, "exactly one event for the slot: {live:?}");
    assert_eq!(live[0]["id"], event_id_of(&slot), "the same event, not a re-creation");
    assert_eq!(live[0]["summary"], "v2");
    assert_eq!(sync_state(&ctx.app.slot(&user, id).await), SyncState::Synced);

    // The deletion's 404s (a new plan restarts the counters) are not taken for "already
    // deleted": the event really goes.
    ctx.google
        .faults(json!({"transient_404": {"times": 2, "ops": ops}}))
        .await;
    assert_eq!(ctx.app.delete_slot(&user, id).await.status(), 204);
    wait_until("the event is deleted in Google", Duration::from_secs(20), || async {
        live_events_of(&ctx, &slot).await.is_empty()
    })
    .await;
    let stats = ctx.google.stats().await;
    assert_eq!(stats.fault_count("events.delete", "transient_404"), 2, "{stats}");
    assert_eq!(stats.op_count("events.insert", "200"), 1, "never re-created: {stats}");
}

#[tokio::test]
async fn a_transient_404_while_confirming_an_event_missing_from_a_full_listing_keeps_its_slot() {
    let ctx = service().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed_slot(&ctx, &user, "v1").await;
    let id = slot["id"].as_str().unwrap();
    // Moved in Google to long before the full sync's window: the full listing omits it,
    // and the reconciliation's `events.get` is answered 404 twice before the event.
    let hub = ctx.google.user_hub(EMAIL).await;
    let at = |t: &str| google_calendar3::api::EventDateTime {
        date_time: Some(t.parse().unwrap()),
        ..Default::default()
    };
    let moved = google_calendar3::api::Event {
        start: Some(at("2025-01-10T09:00:00Z")),
        end: Some(at("2025-01-10T10:00:00Z")),
        ..Default::default()
    };
    hub.events()
        .patch(moved, "primary", &event_id_of(&slot))
        .doit()
        .await
        .unwrap();
    ctx.google
        .faults(json!({"transient_404": {"times": 2, "ops": ["events.get"]}}))
        .await;
    let report = ctx.app.pull(&user, "full").await;
    assert_eq!(report["deleted"], 0, "{report}");
    let stats = ctx.google.stats().await;
    assert_eq!(stats.fault_count("events.get", "transient_404"), 2, "{stats}");
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(now["deleted"], false, "{now}");
    assert_eq!(now["start"], "2025-01-10T09:00:00+00:00", "the move is applied: {now}");
    assert_eq!(live_events_of(&ctx, &slot).await.len(), 1);
}

#[tokio::test]
async fn a_403_on_an_edit_of_an_event_deleted_in_google_recovers_as_a_410_does() {
    let ctx = service().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let hub = ctx.google.user_hub(EMAIL).await;
    let mut recovered = Vec::new();
    for answer in [410, 403] {
        ctx.google.faults(json!({"deleted_event_writes": answer})).await;
        let slot = pushed_slot(&ctx, &user, "v1").await;
        let id = slot["id"].as_str().unwrap();
        // The user deletes the event in Google, then the slot is edited here.
        hub.events()
            .delete("primary", &event_id_of(&slot))
            .doit()
            .await
            .unwrap();
        edit(&ctx, &user, &slot, "v2").await;
        let row = ctx.app.wait_until_pushed(id).await;
        let now = ctx.app.slot(&user, id).await;
        assert_eq!(
            sync_state(&now),
            SyncState::Synced,
            "{answer}: not failed for good: {now}"
        );
        let live = live_events_of(&ctx, &slot).await;
        assert_eq!(live.len(), 1, "{answer}: {live:?}");
        assert_eq!(live[0]["summary"], "v2", "{answer}: the local change wins");
        assert_ne!(
            live[0]["id"],
            event_id_of(&slot),
            "{answer}: created again under a new id"
        );
        assert_eq!(row.google_event_id.as_deref(), live[0]["id"].as_str());
        recovered.push(ctx.google.stats().await.op_count("events.patch", &answer.to_string()));
    }
    assert_eq!(recovered[0], 1, "the 410 case met a 410");
    assert_eq!(recovered[1], 1, "the 403 case met a 403");
}

#[tokio::test]
async fn any_410_on_the_listing_drops_the_sync_token_and_a_full_sync_follows() {
    let ctx = service().await;
    let user = ctx.app.connected_user(EMAIL).await;
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["mode"], "incremental", "{report}");

    // Every listing is answered 410 `deleted` (not `fullSyncRequired`).
    ctx.google.faults(json!({"ops": {"events.list": {"410": 1.0}}})).await;
    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::POST, "/sync/trigger?mode=incremental")
        .await;
    assert_eq!(resp.status(), 503, "the full listing failed too");
    let stats = ctx.google.stats().await;
    assert_eq!(
        stats.fault_count("events.list", "410"),
        2,
        "the incremental listing's 410 led to a full listing at once: {stats}"
    );

    // The token was dropped: the next pull, asked for as incremental, lists in full.
    ctx.google.faults(Value::Null).await;
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["mode"], "full", "{report}");
    let report = ctx.app.pull(&user, "incremental").await;
    assert_eq!(report["mode"], "incremental", "a new token was kept: {report}");
}

/// `GET /health/ready`: the status and the body.
async fn readiness(ctx: &ConnectedApp) -> (u16, Value) {
    let resp = ctx.app.client.get(ctx.app.url("/health/ready")).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn token_calls(ctx: &ConnectedApp) -> u64 {
    ctx.google.stats().await.op_total("oauth.token")
}

#[tokio::test]
async fn a_refused_oauth_client_degrades_the_deployment_pauses_the_work_and_it_resumes_by_itself() {
    let ctx = spawn_app_with_google_and(|s| s.google_client_probe_secs = 1).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed_slot(&ctx, &user, "v1").await;
    let id = slot["id"].as_str().unwrap();
    assert_eq!(readiness(&ctx).await.0, 200);

    // Google now refuses the access token (expired) and the OAuth client at the token
    // endpoint: the edit's push must refresh, and the refresh is answered invalid_client.
    ctx.google.expire_access_tokens().await;
    ctx.google.faults(json!({"token_endpoint": "invalid_client"})).await;
    let before = token_calls(&ctx).await;
    let started = Instant::now();
    edit(&ctx, &user, &slot, "v2").await;

    wait_until("readiness answers 503", Duration::from_secs(20), || async {
        readiness(&ctx).await.0 == 503
    })
    .await;
    let (_, body) = readiness(&ctx).await;
    assert_eq!(body["code"], "google_client_degraded", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("invalid_client"),
        "the reason is given: {body}"
    );
    let metric = ctx.app.api().metric("slotsync_google_client_degraded ").await;
    assert_eq!(metric, 1.0);

    // The work waits: the slot is pending (not failed), the user is not asked to reconnect,
    // the jobs that call Google do nothing, a requested pull waits.
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(sync_state(&now), SyncState::Pending, "{now}");
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["connection"], "active", "{status}");
    for job in ["retry_pushes", "fallback_sync", "refresh_tokens", "renew_channels"] {
        let outcome = ctx.app.run_job(job).await;
        assert_eq!(outcome["skipped"], "google_client_degraded", "{job}: {outcome}");
    }
    ctx.app.state.pulls.request(user.user_id());

    // No spin: over a few probe intervals the token endpoint is asked about once each.
    let at = token_calls(&ctx).await;
    wait_until("two more probes", Duration::from_secs(10), || async {
        token_calls(&ctx).await >= at + 2
    })
    .await;
    let calls = token_calls(&ctx).await - before;
    let bound = 2 + started.elapsed().as_secs();
    assert!(calls <= bound, "{calls} token requests in {:?}", started.elapsed());
    let now = ctx.app.slot(&user, id).await;
    assert_eq!(sync_state(&now), SyncState::Pending, "still pending: {now}");

    // The client works again: ready, and the slot reaches Google by itself.
    ctx.google.faults(Value::Null).await;
    wait_until("readiness answers 200 again", Duration::from_secs(10), || async {
        readiness(&ctx).await.0 == 200
    })
    .await;
    ctx.app.wait_until_pushed(id).await;
    let live = live_events_of(&ctx, &slot).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["summary"], "v2");
    assert_eq!(ctx.app.api().metric("slotsync_google_client_degraded ").await, 0.0);
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["connection"], "active", "{status}");
}

#[tokio::test]
async fn deleted_client_at_the_token_endpoint_degrades_too_and_recovers() {
    let ctx = spawn_app_with_google_and(|s| s.google_client_probe_secs = 1).await;
    let user = ctx.app.connected_user(EMAIL).await;
    let slot = pushed_slot(&ctx, &user, "v1").await;
    ctx.google.expire_access_tokens().await;
    ctx.google.faults(json!({"token_endpoint": "deleted_client"})).await;
    edit(&ctx, &user, &slot, "v2").await;
    wait_until("readiness answers 503", Duration::from_secs(20), || async {
        readiness(&ctx).await.0 == 503
    })
    .await;
    let (_, body) = readiness(&ctx).await;
    assert!(body["message"].as_str().unwrap().contains("deleted_client"), "{body}");
    assert_eq!(ctx.app.sync_status(&user).await["connection"], "active");
    ctx.google.faults(Value::Null).await;
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    assert_eq!(readiness(&ctx).await.0, 200);
}
