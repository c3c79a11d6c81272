//! Reconnecting: the same home continues, another account or calendar re-homes, a
//! disconnect keeps or deletes only slotsync's own events.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    all_events, assert_each_slot_once, connected_calendar, connected_with_slots, connection, create_slots, live_events,
    live_slots, own_event, reconnect, rename, settle, tag, Consent,
};
use crate::helpers::{spawn_app_with_google, wait_until};
use slotsync_testkit::{connection_status, sync_state, ConnectionStatus, SyncState};

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";

#[tokio::test]
async fn reconnecting_the_same_account_and_calendar_pushes_nothing_again() {
    let ctx = spawn_app_with_google().await;
    let (user, _) = connected_with_slots(&ctx, ADA, "primary", 3).await;
    let before = ctx.google.stats().await;

    let again = reconnect(&ctx, &user, "primary", Consent::default()).await;
    assert_eq!(again["outcome"], "continued", "{again}");
    assert_eq!(again["slots_repushed"], 0);
    ctx.app.pull(&user, "full").await;
    settle(&ctx, &user).await;

    let after = ctx.google.stats().await;
    for op in ["events.insert", "events.patch", "events.delete"] {
        assert_eq!(
            before.op_total(op),
            after.op_total(op),
            "{op}: nothing is written again"
        );
    }
    assert_eq!(live_slots(&ctx, &user).await.len(), 3);
    assert_each_slot_once(&ctx, &user, ADA).await;
}

#[tokio::test]
async fn reconnecting_with_a_dedicated_calendar_twice_reuses_it_and_loses_nothing() {
    // The round-1 report: 5 slots, reconnect dedicated, full sync → all 5 were gone.
    let ctx = spawn_app_with_google().await;
    let (user, _) = connected_with_slots(&ctx, ADA, "dedicated", 5).await;
    let calendar = connected_calendar(&ctx, &user).await;
    assert_ne!(calendar, ADA, "a calendar of its own");

    for _ in 0..2 {
        let again = reconnect(&ctx, &user, "dedicated", Consent::default()).await;
        assert_eq!(again["outcome"], "continued", "{again}");
        assert_eq!(
            again["calendar_id"],
            calendar.as_str(),
            "the dedicated calendar is reused"
        );
        ctx.app.pull(&user, "full").await;
        settle(&ctx, &user).await;
        assert_eq!(live_slots(&ctx, &user).await.len(), 5);
        assert_each_slot_once(&ctx, &user, &calendar).await;
    }
    let calendars = ctx
        .google
        .user_hub(ADA)
        .await
        .calendar_list()
        .list()
        .doit()
        .await
        .unwrap()
        .1;
    let dedicated = calendars
        .items
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.summary.as_deref() == Some("slotsync"))
        .count();
    assert_eq!(
        dedicated, 1,
        "one dedicated calendar per account, however often one reconnects"
    );
}

#[tokio::test]
async fn primary_to_dedicated_and_back_moves_every_slot_once_and_never_duplicates() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user(ADA).await;
    let own = own_event(&ctx, ADA, "primary", "my own meeting").await;
    reconnect(&ctx, &user, "primary", Consent::default()).await;
    settle(&ctx, &user).await;
    create_slots(&ctx, &user, "slot", 3).await;
    settle(&ctx, &user).await;
    assert_eq!(
        live_slots(&ctx, &user).await.len(),
        4,
        "3 slots and the imported meeting"
    );

    let moved = reconnect(&ctx, &user, "dedicated", Consent::default()).await;
    assert_eq!(moved["outcome"], "rehomed", "{moved}");
    assert_eq!(moved["slots_repushed"], 4);
    assert_eq!(moved["previous_calendar_id"], "primary");
    assert!(moved["note"].as_str().unwrap().contains("left"), "{moved}");
    settle(&ctx, &user).await;
    let dedicated = connected_calendar(&ctx, &user).await;
    assert_each_slot_once(&ctx, &user, &dedicated).await;
    assert_eq!(live_events(&ctx, &dedicated).await.len(), 4);
    // The primary calendar was left as it was: the user's meeting and slotsync's events.
    let primary = live_events(&ctx, ADA).await;
    assert_eq!(primary.len(), 4, "{primary:?}");
    assert!(primary.iter().any(|e| e["id"] == own.as_str()));

    let back = reconnect(&ctx, &user, "primary", Consent::default()).await;
    assert_eq!(back["outcome"], "rehomed", "{back}");
    ctx.app.pull(&user, "full").await;
    settle(&ctx, &user).await;
    assert_eq!(live_slots(&ctx, &user).await.len(), 4, "nothing imported twice");
    assert_each_slot_once(&ctx, &user, ADA).await;
    let primary = live_events(&ctx, ADA).await;
    assert_eq!(primary.len(), 4, "back home, nothing duplicated: {primary:?}");
    assert!(
        primary.iter().any(|e| e["id"] == own.as_str()),
        "the user's meeting is still there"
    );
    let audit = ctx.app.get_json(&user, "/auth/audit").await;
    let rehomes = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rehome")
        .count();
    assert_eq!(rehomes, 2, "{audit}");
}

/// Found by the lifecycle property (seed 1): the slot's event in primary, left in place at
/// the re-homing, outlived the slot.
#[tokio::test]
async fn a_slot_deleted_while_elsewhere_is_deleted_from_the_calendar_it_returns_to() {
    let ctx = spawn_app_with_google().await;
    let (user, ids) = connected_with_slots(&ctx, ADA, "primary", 2).await;
    let moved = reconnect(&ctx, &user, "dedicated", Consent::default()).await;
    assert_eq!(moved["outcome"], "rehomed", "{moved}");
    settle(&ctx, &user).await;
    let dedicated = connected_calendar(&ctx, &user).await;
    let resp = ctx.app.delete_slot(&user, &ids[0]).await;
    assert_eq!(resp.status(), 204);
    settle(&ctx, &user).await;
    assert_each_slot_once(&ctx, &user, &dedicated).await;
    assert_eq!(live_events(&ctx, ADA).await.len(), 2, "primary was left as it was");

    let back = reconnect(&ctx, &user, "primary", Consent::default()).await;
    assert_eq!(back["outcome"], "rehomed", "{back}");
    settle(&ctx, &user).await;
    assert_each_slot_once(&ctx, &user, ADA).await;
    let primary = live_events(&ctx, ADA).await;
    assert_eq!(primary.len(), 1, "the deleted slot's old event went too: {primary:?}");
    assert_eq!(tag(&primary[0]), Some(ids[1].as_str()));
    assert_eq!(live_slots(&ctx, &user).await.len(), 1);
}

#[tokio::test]
async fn switching_google_account_moves_the_slots_to_the_new_account_and_leaves_the_old_one_alone() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user(ADA).await;
    own_event(&ctx, ADA, "primary", "ada's meeting").await;
    reconnect(&ctx, &user, "primary", Consent::default()).await;
    settle(&ctx, &user).await;
    create_slots(&ctx, &user, "slot", 3).await;
    settle(&ctx, &user).await;
    let ada_before = all_events(&ctx, ADA).await;

    // Another account picked on the consent screen (login_hint is only a hint).
    let switched = reconnect(
        &ctx,
        &user,
        "primary",
        Consent {
            account: Some(BOB),
            ..Consent::default()
        },
    )
    .await;
    assert_eq!(switched["outcome"], "rehomed", "{switched}");
    assert_eq!(switched["google_email"], BOB);
    assert_eq!(switched["previous_google_email"], ADA);
    settle(&ctx, &user).await;

    assert_eq!(live_slots(&ctx, &user).await.len(), 4);
    assert_each_slot_once(&ctx, &user, BOB).await;
    assert_eq!(live_events(&ctx, BOB).await.len(), 4);
    assert_eq!(
        all_events(&ctx, ADA).await,
        ada_before,
        "the old account is left as it was"
    );

    // A change now goes to the new account, with the new account's token.
    let id = live_slots(&ctx, &user).await[0]["id"].as_str().unwrap().to_owned();
    rename(&ctx, &user, &id, "renamed").await;
    settle(&ctx, &user).await;
    assert!(live_events(&ctx, BOB).await.iter().any(|e| e["summary"] == "renamed"));
    assert_eq!(all_events(&ctx, ADA).await, ada_before);
}

#[tokio::test]
async fn disconnecting_and_reconnecting_resumes_without_pushing_again() {
    let ctx = spawn_app_with_google().await;
    let (user, _) = connected_with_slots(&ctx, ADA, "primary", 3).await;
    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::DELETE, "/auth/google/connection")
        .await;
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary["status"], "revoked", "{summary}");
    assert!(live_slots(&ctx, &user)
        .await
        .iter()
        .all(|s| sync_state(s) == SyncState::Paused));
    assert_eq!(live_events(&ctx, ADA).await.len(), 3, "the events stay");
    let before = ctx.google.stats().await;

    let again = reconnect(&ctx, &user, "primary", Consent::default()).await;
    assert_eq!(again["outcome"], "continued", "{again}");
    settle(&ctx, &user).await;
    let after = ctx.google.stats().await;
    assert_eq!(before.op_total("events.insert"), after.op_total("events.insert"));
    assert_eq!(before.op_total("events.patch"), after.op_total("events.patch"));
    assert_each_slot_once(&ctx, &user, ADA).await;
}

#[tokio::test]
async fn disconnect_with_delete_events_deletes_only_what_slotsync_created_in_the_background() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user(ADA).await;
    let own = own_event(&ctx, ADA, "primary", "my own meeting").await;
    reconnect(&ctx, &user, "primary", Consent::default()).await;
    settle(&ctx, &user).await;
    create_slots(&ctx, &user, "slot", 2).await;
    settle(&ctx, &user).await;
    let imported = live_slots(&ctx, &user)
        .await
        .into_iter()
        .find(|s| s["source"] == "google")
        .expect("the meeting is imported");
    // Edited through the API: still the user's own event, never deleted by a disconnect.
    rename(&ctx, &user, imported["id"].as_str().unwrap(), "my own meeting, moved").await;
    settle(&ctx, &user).await;

    let resp = ctx
        .app
        .user_send(
            &user,
            reqwest::Method::DELETE,
            "/auth/google/connection?delete_events=true",
        )
        .await;
    assert_eq!(resp.status(), 200);
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary["events_to_delete"], 2, "{summary}");
    assert_eq!(summary["status"], "disconnecting", "{summary}");
    wait_until("the event deletion ends", Duration::from_secs(20), || async {
        ctx.app.sync_status(&user).await["event_deletion"]["finished_at"].is_string()
    })
    .await;
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["event_deletion"]["done"], 2, "{status}");
    assert_eq!(status["event_deletion"]["failed"], 0, "{status}");
    assert_eq!(
        connection_status(&connection(&ctx, &user).await),
        ConnectionStatus::Revoked
    );

    let live = live_events(&ctx, ADA).await;
    assert_eq!(live.len(), 1, "only the user's meeting is left: {live:?}");
    assert_eq!(live[0]["id"], own.as_str());
    assert_eq!(live[0]["summary"], "my own meeting, moved");
    assert_eq!(
        live_slots(&ctx, &user).await.len(),
        3,
        "no slot is deleted by a disconnect"
    );

    // Connecting again puts the two slots back in Google, each once.
    let again = reconnect(&ctx, &user, "primary", Consent::default()).await;
    assert_eq!(again["outcome"], "continued", "{again}");
    settle(&ctx, &user).await;
    assert_each_slot_once(&ctx, &user, ADA).await;
    assert_eq!(live_events(&ctx, ADA).await.len(), 3);
}

#[tokio::test]
async fn a_revoked_grant_then_a_reconnect_pushes_the_backlog_once() {
    let ctx = spawn_app_with_google().await;
    let (user, ids) = connected_with_slots(&ctx, ADA, "primary", 2).await;
    ctx.google.revoke_tokens(ADA).await;
    // Changes made meanwhile: a new slot, an edit, a deletion.
    create_slots(&ctx, &user, "backlog", 1).await;
    rename(&ctx, &user, &ids[0], "edited while revoked").await;
    assert_eq!(ctx.app.delete_slot(&user, &ids[1]).await.status(), 204);
    wait_until(
        "the connection needs re-authorization",
        Duration::from_secs(10),
        || async { connection_status(&connection(&ctx, &user).await) == ConnectionStatus::NeedsReauth },
    )
    .await;
    let c = connection(&ctx, &user).await;
    assert!(c["next_step"].as_str().unwrap().contains("authorize"), "{c}");

    let again = reconnect(&ctx, &user, "primary", Consent::default()).await;
    assert_eq!(again["outcome"], "continued", "{again}");
    settle(&ctx, &user).await;
    assert_eq!(live_slots(&ctx, &user).await.len(), 2);
    assert_each_slot_once(&ctx, &user, ADA).await;
    let live = live_events(&ctx, ADA).await;
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(live.iter().any(|e| e["summary"] == "edited while revoked"));
    assert!(
        !live.iter().any(|e| tag(e) == Some(ids[1].as_str())),
        "the deletion reached Google"
    );
}

#[tokio::test]
async fn an_authorize_link_for_a_known_address_refuses_another_account_and_changes_nothing() {
    let ctx = spawn_app_with_google().await;
    let (user, _) = connected_with_slots(&ctx, ADA, "primary", 1).await;
    let before = connection(&ctx, &user).await;

    let resp = ctx
        .app
        .admin_post(
            &format!("/auth/users/{}/authorize-link?expected_email={ADA}", user.id),
            &json!({}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let link: Value = resp.json().await.unwrap();
    super::set_consent(&ctx, json!({ "decision": "approve", "account": BOB })).await;
    let answer = crate::helpers::browser()
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = answer.headers()["location"].to_str().unwrap().to_owned();
    let resp = crate::helpers::browser().get(&callback).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let error: Value = resp.json().await.unwrap();
    assert_eq!(error["code"], "wrong_google_account", "{error}");
    assert!(error["message"].as_str().unwrap().contains(ADA), "{error}");
    super::set_consent(&ctx, json!({ "decision": "approve" })).await;

    let after = connection(&ctx, &user).await;
    assert_eq!(after["google_email"], before["google_email"]);
    assert_eq!(after["connected_at"], before["connected_at"]);
    assert!(live_events(&ctx, BOB).await.is_empty());
    let bad = ctx
        .app
        .admin_post(
            &format!("/auth/users/{}/authorize-link?expected_email=nobody", user.id),
            &json!({}),
        )
        .await;
    let error = crate::helpers::assert_error(bad, 400, "invalid_field").await;
    assert_eq!(error["field"], "expected_email");
}

#[tokio::test]
async fn a_disconnect_left_half_done_by_a_stopped_process_is_finished_at_the_next_start() {
    use slotsync::domain::ConnectionStatus;
    use slotsync::store::{connections, sync_states};
    let ctx = spawn_app_with_google().await;
    let (user, _) = connected_with_slots(&ctx, ADA, "primary", 2).await;
    // What a process that died during the background deletion leaves behind.
    let id = user.user_id();
    connections::set_status(&ctx.app.state.db, id, ConnectionStatus::Disconnecting, None)
        .await
        .unwrap();
    let progress = sync_states::Cleanup {
        total: 2,
        started_at: Some(chrono::Utc::now()),
        ..Default::default()
    };
    sync_states::record_cleanup(&ctx.app.state.db, id, progress)
        .await
        .unwrap();
    assert_eq!(live_events(&ctx, ADA).await.len(), 2);

    // The start of a process resumes it (what Application::run does first).
    let resumed = slotsync::sync::disconnect::resume_unfinished(&ctx.app.state.sync)
        .await
        .unwrap();
    assert_eq!(resumed, 1);
    wait_until("the connection is revoked", Duration::from_secs(20), || async {
        connection_status(&connection(&ctx, &user).await) == ConnectionStatus::Revoked
    })
    .await;
    assert!(live_events(&ctx, ADA).await.is_empty());
    assert_eq!(live_slots(&ctx, &user).await.len(), 2, "the slots stay");
    let status = ctx.app.sync_status(&user).await;
    assert_eq!(status["event_deletion"]["done"], 2, "{status}");
}

#[tokio::test]
async fn a_switch_of_calendar_leaves_read_only_slots_behind_instead_of_copying_them() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user(ADA).await;
    let at = |day: u32| {
        json!({"start": {"dateTime": format!("2026-12-{day:02}T09:00:00Z")},
               "end": {"dateTime": format!("2026-12-{day:02}T10:00:00Z")}})
    };
    reconnect(&ctx, &user, "primary", Consent::default()).await;
    settle(&ctx, &user).await;
    let mut away = at(3);
    away["summary"] = json!("Away");
    away["eventType"] = json!("outOfOffice");
    let away = ctx.google.seed_event(ADA, &away).await;
    let mut theirs = at(4);
    theirs["summary"] = json!("Their sync");
    ctx.google.create_meeting(BOB, &[ADA], &theirs).await;
    ctx.app.pull(&user, "full").await;
    create_slots(&ctx, &user, "slot", 2).await;
    settle(&ctx, &user).await;
    let slots = live_slots(&ctx, &user).await;
    let read_only: Vec<&Value> = slots.iter().filter(|s| s["read_only"] == true).collect();
    assert_eq!(read_only.len(), 2, "the absence and the invitation: {slots:?}");

    let moved = reconnect(&ctx, &user, "dedicated", Consent::default()).await;
    assert_eq!(moved["outcome"], "rehomed", "{moved}");
    assert_eq!(moved["slots_repushed"], 2, "only the user's own slots move: {moved}");
    settle(&ctx, &user).await;
    let dedicated = connected_calendar(&ctx, &user).await;
    let copied = live_events(&ctx, &dedicated).await;
    assert_eq!(copied.len(), 2, "no copy of the absence or the invitation: {copied:?}");
    assert_each_slot_once(&ctx, &user, &dedicated).await;
    let left = live_slots(&ctx, &user).await;
    assert!(left.iter().all(|s| s["read_only"] == false), "{left:?}");
    // Google kept both where they were, untouched.
    let primary = live_events(&ctx, ADA).await;
    assert!(primary.iter().any(|e| e["id"] == away["id"]), "{primary:?}");
    assert!(primary.iter().any(|e| e["summary"] == "Their sync"), "{primary:?}");
    // The feed says why the two left.
    let feed = ctx.app.get_json(&user, "/changes?limit=100").await;
    let dropped = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "slot.deleted" && c["detail"]["reason"] == "rehome_read_only")
        .count();
    assert_eq!(dropped, 2, "{feed}");
}
