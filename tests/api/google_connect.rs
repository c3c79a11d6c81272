//! Connecting a Google account the way a browser does it, against the emulator.

use serde_json::{json, Value};
use slotsync::crypto::Secret;

use slotsync_testkit::browser::{consent, follow};

use crate::helpers::{
    assert_error, slot_body, spawn_app_with_channels_and, spawn_app_with_google, ConnectedApp, TestUser,
};
use slotsync_testkit::{connection_status, sync_state, ConnectionStatus, SyncState};

async fn authorize_url(ctx: &ConnectedApp, user: &TestUser, query: &str) -> String {
    ctx.app.api().authorize_url(user, query).await
}

/// Connects `user` end to end and returns the callback URL that was used.
async fn connect(ctx: &ConnectedApp, user: &TestUser) -> String {
    ctx.app.connect(user).await
}

#[tokio::test]
async fn a_user_connects_through_the_browser_flow_and_no_token_is_stored_in_plaintext() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;
    let before: Value = ctx.app.get_json(&user, "/auth/google/connection").await;
    assert_eq!(before["connected"], false);

    let url = authorize_url(&ctx, &user, "").await;
    assert!(url.starts_with(&format!("{}/o/oauth2/v2/auth", ctx.google.base_url())));
    assert!(url.contains("code_challenge_method=S256") && url.contains("access_type=offline"));
    let callback = consent(&url).await;
    assert!(callback.starts_with(&ctx.app.address), "{callback}");
    let resp = follow(&callback).await;
    assert_eq!(resp.status(), 200);
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary["connected"], true);
    assert_eq!(summary["google_email"], "ada@example.com");

    let status: Value = ctx.app.get_json(&user, "/auth/google/connection").await;
    assert_eq!(connection_status(&status), ConnectionStatus::Active);
    assert_eq!(status["calendar_id"], "primary");
    assert_eq!(status["has_required_scopes"], true);
    assert_eq!(status["missing_scopes"], json!([]));
    assert!(status["token_expires_at"].is_string());

    let audit: Value = ctx.app.get_json(&user, "/auth/audit").await;
    assert_eq!(audit[0]["kind"], "connect");

    let conn = slotsync::store::connections::find(
        &ctx.app.state.db,
        slotsync::domain::UserId(uuid::Uuid::parse_str(&user.id).unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    let access = ctx
        .app
        .state
        .keys
        .decrypt(
            conn.access_token_enc.as_ref().unwrap(),
            conn.user_id,
            Secret::AccessToken,
        )
        .unwrap();
    let refresh = ctx
        .app
        .state
        .keys
        .decrypt(
            conn.refresh_token_enc.as_ref().unwrap(),
            conn.user_id,
            Secret::RefreshToken,
        )
        .unwrap();
    if let Some(path) = ctx.app.state.settings.database_url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&access) && !text.contains(&refresh),
            "plaintext token in the database"
        );
    }
}

#[tokio::test]
async fn a_replayed_tampered_or_expired_state_is_refused_and_stores_nothing() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;

    // Tampered: another user's id with the old signature.
    let callback = consent(&authorize_url(&ctx, &user, "").await).await;
    let parsed = url::Url::parse(&callback).unwrap();
    let state = parsed.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let (payload, sig) = state.split_once('.').unwrap();
    let mut forged_payload = payload.to_owned();
    forged_payload.replace_range(2..3, if &payload[2..3] == "A" { "B" } else { "A" });
    let forged = callback.replace(&state, &format!("{forged_payload}.{sig}"));
    let body = assert_error(follow(&forged).await, 400, "invalid_field").await;
    assert_eq!(body["field"], "state");

    // Expired: a correctly signed state whose expiry has passed.
    let expired_payload = serde_json::to_vec(&json!({"u": user.id, "n": "whatever", "e": 1_000})).unwrap();
    let expired_state = ctx.app.state.keys.sign_state(&expired_payload);
    let expired = callback.replace(&state, &expired_state);
    let body = assert_error(follow(&expired).await, 400, "invalid_field").await;
    assert!(body["message"].as_str().unwrap().contains("expired"), "{body}");

    let status: Value = ctx.app.get_json(&user, "/auth/google/connection").await;
    assert_eq!(status["connected"], false, "nothing stored after refused callbacks");

    // The genuine callback works once; its replay is refused.
    assert_eq!(follow(&callback).await.status(), 200);
    let body = assert_error(follow(&callback).await, 400, "invalid_field").await;
    assert!(body["message"].as_str().unwrap().contains("already used"), "{body}");
}

#[tokio::test]
async fn a_declined_consent_is_a_clean_400_and_nothing_is_stored() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;
    ctx.google.consent(json!({"decision": "deny"})).await;
    let callback = consent(&authorize_url(&ctx, &user, "").await).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let body = assert_error(follow(&callback).await, 400, "access_denied").await;
    assert!(body["message"].as_str().unwrap().contains("declined"));
    let status: Value = ctx.app.get_json(&user, "/auth/google/connection").await;
    assert_eq!(status["connected"], false);
    assert_eq!(status["status"], Value::Null);
}

#[tokio::test]
async fn return_to_redirects_after_connecting_and_foreign_origins_are_refused() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;
    let resp = ctx
        .app
        .get(&user, "/auth/google/authorize?return_to=https://evil.example.net/x")
        .await;
    let body = assert_error(resp, 400, "invalid_field").await;
    assert_eq!(body["field"], "return_to");
    // What a browser would follow to another origin: a tab or a backslash after the
    // slash, a protocol-relative URL, user-info. Refused before anything is stored.
    for sneaky in [
        "/%09/evil.example",
        "/%5Cevil.example",
        "//evil.example",
        "https://app.example.com@evil.example/",
    ] {
        let resp = ctx
            .app
            .get(&user, &format!("/auth/google/authorize?return_to={sneaky}"))
            .await;
        let body = assert_error(resp, 400, "invalid_field").await;
        assert_eq!(body["field"], "return_to", "{sneaky}");
    }

    let url = authorize_url(&ctx, &user, "?return_to=/settings%3Ftab%3Dsync&calendar=dedicated").await;
    let resp = follow(&consent(&url).await).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/settings?tab=sync&google=connected");
    let status: Value = ctx.app.get_json(&user, "/auth/google/connection").await;
    let calendar = status["calendar_id"].as_str().unwrap();
    assert_ne!(calendar, "primary", "a dedicated calendar was created");
    assert_eq!(ctx.google.stats().await.op_count("calendars.insert", "200"), 1);
}

#[tokio::test]
async fn disconnecting_revokes_at_google_erases_tokens_and_pauses_slots() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;
    let slot = ctx
        .app
        .create_slot(&user, &slot_body("s", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    connect(&ctx, &user).await;
    // Connecting pushes the waiting slot; let that finish so the pause below is the last word.
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    let revokes_before = ctx.google.stats().await.op_count("oauth.revoke", "200");

    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::DELETE, "/auth/google/connection")
        .await;
    assert_eq!(resp.status(), 200);
    let summary: Value = resp.json().await.unwrap();
    let audit: Value = ctx.app.get_json(&user, "/auth/audit").await;
    assert_eq!(summary["revoked_at_google"], true, "{audit}");
    assert_eq!(summary["slots_paused"], 1);
    assert_eq!(
        ctx.google.stats().await.op_count("oauth.revoke", "200"),
        revokes_before + 1
    );

    let status: Value = ctx.app.get_json(&user, "/auth/google/connection").await;
    assert_eq!(connection_status(&status), ConnectionStatus::Revoked);
    assert_eq!(status["connected"], false);
    let conn = slotsync::store::connections::find(
        &ctx.app.state.db,
        slotsync::domain::UserId(uuid::Uuid::parse_str(&user.id).unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(conn.access_token_enc.is_none() && conn.refresh_token_enc.is_none());
    let slots: Value = ctx.app.get_json(&user, "/slots").await;
    assert_eq!(sync_state(&slots["items"][0]), SyncState::Paused);
    let audit: Value = ctx.app.get_json(&user, "/auth/audit").await;
    assert_eq!(audit[0]["kind"], "disconnect");

    // Connecting again resumes the paused slots: they are pushed again.
    connect(&ctx, &user).await;
    let slots: Value = ctx.app.get_json(&user, "/slots").await;
    assert_ne!(sync_state(&slots["items"][0]), SyncState::Paused);
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn missing_scopes_are_reported() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;
    connect(&ctx, &user).await;
    use sea_orm::{ActiveModelTrait, Set};
    let id = uuid::Uuid::parse_str(&user.id).unwrap();
    let row = slotsync::store::connections::find(&ctx.app.state.db, slotsync::domain::UserId(id))
        .await
        .unwrap()
        .unwrap();
    let mut active: slotsync::store::entities::google_connections::ActiveModel = row.into();
    active.granted_scopes = Set("openid email https://www.googleapis.com/auth/calendar.readonly".into());
    active.update(&ctx.app.state.db).await.unwrap();
    let status: Value = ctx.app.get_json(&user, "/auth/google/connection").await;
    assert_eq!(status["has_required_scopes"], false);
    assert_eq!(
        status["missing_scopes"],
        json!(["https://www.googleapis.com/auth/calendar"])
    );
}

#[tokio::test]
async fn an_admin_gets_an_authorize_link_and_can_rerun_initialisation() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;
    let resp = ctx
        .app
        .admin_post(&format!("/auth/users/{}/authorize-link", user.id), &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let link: Value = resp.json().await.unwrap();
    let resp = follow(&consent(link["url"].as_str().unwrap()).await).await;
    assert_eq!(resp.status(), 200);

    let resp = ctx
        .app
        .admin_post(&format!("/auth/initialize/{}", user.id), &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let other = ctx.app.create_user("bob@example.com").await;
    let resp = ctx
        .app
        .admin_post(&format!("/auth/initialize/{}", other.id), &json!({}))
        .await;
    assert_error(resp, 404, "not_found").await;
}

#[tokio::test]
async fn starting_authorizations_is_rate_limited_per_user() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;
    for _ in 0..slotsync::api::google_auth::AUTHORIZE_PER_MINUTE {
        assert_eq!(ctx.app.get(&user, "/auth/google/authorize").await.status(), 200);
    }
    let resp = ctx.app.get(&user, "/auth/google/authorize").await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_error(resp, 429, "rate_limited").await;
    let other = ctx.app.create_user("bob@example.com").await;
    assert_eq!(ctx.app.get(&other, "/auth/google/authorize").await.status(), 200);
}

#[tokio::test]
async fn disconnect_with_delete_events_removes_the_events_slotsync_created_then_revokes() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.create_user("ada@example.com").await;
    connect(&ctx, &user).await;
    let slot = ctx
        .app
        .create_slot(&user, &slot_body("s", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    let pushed = ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    let event_id = pushed.google_event_id.expect("the pushed slot is linked to its event");

    let resp = ctx
        .app
        .user_send(
            &user,
            reqwest::Method::POST,
            "/auth/google/disconnect?delete_events=true",
        )
        .await;
    assert_eq!(resp.status(), 200);
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary["events_to_delete"], 1, "{summary}");
    assert_eq!(summary["status"], "disconnecting", "{summary}");
    // The deletion runs in the background; the grant is revoked when it ends.
    crate::helpers::wait_until(
        "the deletion's end is logged",
        std::time::Duration::from_secs(20),
        || async {
            let audit = ctx.app.get_json(&user, "/auth/audit").await;
            audit
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "disconnect_finished")
        },
    )
    .await;
    assert_eq!(
        ctx.app.get_json(&user, "/auth/google/connection").await["status"],
        "revoked"
    );
    let audit = ctx.app.get_json(&user, "/auth/audit").await;
    let finished = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "disconnect_finished")
        .expect("the end of the deletion is logged");
    assert_eq!(finished["detail"]["revoked_at_google"], true, "{finished}");
    assert_eq!(finished["detail"]["events_deleted"], 1, "{finished}");

    let events = ctx.google.events("ada@example.com").await;
    let ours = events
        .iter()
        .find(|e| e["id"] == event_id.as_str())
        .expect("the event is listed");
    assert_eq!(ours["status"], "cancelled", "{ours}");
}

#[tokio::test]
async fn disconnect_stops_the_users_live_channels_at_google() {
    // With PUBLIC_BASE_URL set, connecting creates the channel (see tests/api/channels.rs).
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.create_user("ada@example.com").await;
    connect(&ctx, &user).await;
    assert_eq!(ctx.app.live_channels(&user).await.len(), 1);

    let resp = ctx
        .app
        .user_send(&user, reqwest::Method::DELETE, "/auth/google/connection")
        .await;
    let summary: Value = resp.json().await.unwrap();
    assert_eq!(summary["channels_stopped"], 1, "{summary}");
    let stats = ctx.google.stats().await;
    assert_eq!(stats.op_count("channels.stop", "204"), 1, "{stats}");
    assert!(ctx.app.live_channels(&user).await.is_empty());
    assert!(ctx.google.channels().await.iter().all(|c| c["live"] == false));
}
