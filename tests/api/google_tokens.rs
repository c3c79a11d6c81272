//! The OAuth building blocks end to end against the emulator: the code flow with PKCE,
//! encrypted storage, the vault's single refresh under concurrent google-calendar3 calls,
//! and a revoked grant turning the connection into `needs_reauth`.

use std::sync::Arc;

use chrono::{Duration, Utc};
use slotsync::crypto::{Keys, Secret};
use slotsync::domain::{AuditKind, ConnectionStatus, UserId};
use slotsync::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS};
use slotsync::google::hub::calendar_hub;
use slotsync::google::oauth::{OAuthClient, OAuthError, TokenSet};
use slotsync::google::vault::{TokenVault, VaultError};
use slotsync::google::{missing_scopes, GoogleEndpoints};
use slotsync::store::connections::{self, NewConnection};

use slotsync_testkit::{browser, Google, SECRET_KEY};

use crate::helpers::spawn_app;

fn oauth_client(endpoints: &GoogleEndpoints) -> OAuthClient {
    OAuthClient::new(
        endpoints,
        Some(DEFAULT_CLIENT_ID),
        Some(DEFAULT_CLIENT_SECRET),
        Some(DEFAULT_REDIRECT_URIS[0]),
    )
    .unwrap()
}

/// Follows the authorize URL like a browser would and returns the `code` and `state`
/// the emulator redirects back with.
async fn authorize(url: &str) -> (String, String) {
    let location = url::Url::parse(&browser::consent(url).await).unwrap();
    assert!(location.as_str().starts_with(DEFAULT_REDIRECT_URIS[0]));
    let get = |k: &str| {
        location
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    (get("code").expect("a code"), get("state").expect("the state"))
}

#[tokio::test]
async fn the_code_flow_with_pkce_yields_tokens_and_a_wrong_verifier_is_refused() {
    let google = Google::start().await;
    let endpoints = GoogleEndpoints::emulator(&google.base_url());
    let oauth = oauth_client(&endpoints);

    let (challenge, verifier) = OAuthClient::new_pkce();
    let url = oauth.authorize_url("state-1".into(), challenge, Some("ada@example.com"));
    let parsed = url::Url::parse(&url).unwrap();
    let param = |k: &str| parsed.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    assert_eq!(param("access_type").as_deref(), Some("offline"));
    assert_eq!(param("prompt").as_deref(), Some("consent"));
    assert_eq!(param("include_granted_scopes").as_deref(), Some("true"));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(param("scope")
        .unwrap()
        .contains("https://www.googleapis.com/auth/calendar"));

    let (code, state) = authorize(&url).await;
    assert_eq!(state, "state-1");
    let tokens: TokenSet = oauth.exchange_code(&code, verifier.secret().clone()).await.unwrap();
    assert!(
        tokens.refresh_token.is_some(),
        "offline access with consent returns a refresh token"
    );
    assert!(tokens.expires_at > Utc::now() + Duration::seconds(3000));
    assert!(missing_scopes(&tokens.scopes).is_empty(), "granted: {}", tokens.scopes);
    assert_eq!(
        oauth.userinfo_email(&tokens.access_token).await.unwrap().as_deref(),
        Some("ada@example.com")
    );

    // The code is single use.
    let reuse = oauth.exchange_code(&code, verifier.secret().clone()).await;
    assert!(matches!(reuse, Err(OAuthError::InvalidGrant(_))), "{reuse:?}");

    // A verifier that does not match the challenge is refused.
    let (challenge, _verifier) = OAuthClient::new_pkce();
    let (code, _) = authorize(&oauth.authorize_url("state-2".into(), challenge, None)).await;
    let (_, wrong) = OAuthClient::new_pkce();
    let refused = oauth.exchange_code(&code, wrong.secret().clone()).await;
    assert!(matches!(refused, Err(OAuthError::InvalidGrant(_))), "{refused:?}");
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_once_under_20_concurrent_calls_and_a_revoked_grant_needs_reauth() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let user_id = UserId(uuid::Uuid::parse_str(&user.id).unwrap());
    let google = Google::start().await;
    let base = google.base_url();
    let endpoints = GoogleEndpoints::emulator(&base);
    let oauth = oauth_client(&endpoints);

    let (challenge, verifier) = OAuthClient::new_pkce();
    let (code, _) = authorize(&oauth.authorize_url("s".into(), challenge, Some("ada@example.com"))).await;
    let tokens = oauth.exchange_code(&code, verifier.secret().clone()).await.unwrap();
    let refresh_token = tokens.refresh_token.clone().unwrap();

    let keys = Keys::derive(SECRET_KEY.as_bytes());
    // Stored with 30 s left: inside the vault's 60 s margin, so the next use refreshes.
    connections::upsert(
        &app.state.db,
        NewConnection {
            user_id,
            google_email: Some("ada@example.com".into()),
            google_sub: None,
            calendar_id: "primary".into(),
            access_token_enc: keys.encrypt(&tokens.access_token, user_id.0, Secret::AccessToken),
            refresh_token_enc: Some(keys.encrypt(&refresh_token, user_id.0, Secret::RefreshToken)),
            token_expires_at: Utc::now() + Duration::seconds(30),
            granted_scopes: tokens.scopes.clone(),
        },
    )
    .await
    .unwrap();

    if app.state.settings.database_url.starts_with("sqlite:") {
        let path = app.state.settings.database_url.trim_start_matches("sqlite://");
        let path = path.split('?').next().unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            bytes.extend(wal);
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&tokens.access_token),
            "plaintext access token in the database file"
        );
        assert!(
            !text.contains(&refresh_token),
            "plaintext refresh token in the database file"
        );
    }

    let vault = Arc::new(TokenVault::new(app.state.db.clone(), keys.clone(), Ok(oauth.clone())));
    let before = google.stats().await;
    let calls = (0..20).map(|_| {
        let hub = calendar_hub(&endpoints, vault.for_user(user_id));
        async move { hub.calendar_list().list().doit().await.map(|(_, list)| list) }
    });
    for result in futures::future::join_all(calls).await {
        let list = result.expect("every concurrent call succeeds");
        assert!(!list.items.unwrap_or_default().is_empty());
    }
    let after = google.stats().await;
    assert_eq!(
        after.op_count("oauth.token.refresh_token", "200") - before.op_count("oauth.token.refresh_token", "200"),
        1,
        "exactly one refresh: {after}"
    );
    assert_eq!(
        after.op_count("calendarList.list", "200") - before.op_count("calendarList.list", "200"),
        20
    );
    let stored = connections::find(&app.state.db, user_id).await.unwrap().unwrap();
    assert!(stored.token_expires_at.unwrap() > Utc::now() + Duration::seconds(3000));

    // Revoke the grant at Google, let the access token run out: the vault gives up cleanly.
    google.revoke_tokens("ada@example.com").await;
    connections::save_refreshed_token(
        &app.state.db,
        user_id,
        stored.access_token_enc.clone().unwrap(),
        Utc::now() - Duration::seconds(1),
        None,
    )
    .await
    .unwrap();
    // The vault caches tokens in memory; a token changed behind its back is read afresh.
    vault.forget(user_id);
    let err = vault.access_token(user_id).await.unwrap_err();
    assert!(matches!(err, VaultError::NeedsReauth), "{err:?}");
    let conn = connections::find(&app.state.db, user_id).await.unwrap().unwrap();
    assert_eq!(conn.status, ConnectionStatus::NeedsReauth);
    assert!(conn.last_error.unwrap().contains("reconnect"));
    let events = slotsync::store::audit::list(&app.state.db, user_id, &[AuditKind::NeedsReauth], 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);

    // And it stays paused: no further refresh attempts at Google.
    let refreshes = google.stats().await.op_count("oauth.token.refresh_token", "400");
    assert!(matches!(
        vault.access_token(user_id).await,
        Err(VaultError::NeedsReauth)
    ));
    assert_eq!(
        google.stats().await.op_count("oauth.token.refresh_token", "400"),
        refreshes
    );
}

#[tokio::test]
async fn tokens_stored_before_the_binding_are_sealed_again_at_the_next_start_and_keep_working() {
    use slotsync::store::connections;
    let ctx = crate::helpers::spawn_app_with_google().await;
    let user = ctx.app.connected_user("ada@example.com").await;
    let id = uuid::Uuid::parse_str(&user.id).unwrap();
    let keys = &ctx.app.state.keys;
    let conn = connections::find(&ctx.app.state.db, UserId(id)).await.unwrap().unwrap();
    let access = keys
        .decrypt(conn.access_token_enc.as_deref().unwrap(), id, Secret::AccessToken)
        .unwrap();
    let refresh = keys
        .decrypt(conn.refresh_token_enc.as_deref().unwrap(), id, Secret::RefreshToken)
        .unwrap();
    // What an earlier release stored: the first format, without associated data.
    for (refresh_column, old, plain) in [
        (false, conn.access_token_enc.clone().unwrap(), &access),
        (true, conn.refresh_token_enc.clone().unwrap(), &refresh),
    ] {
        connections::replace_sealed(
            &ctx.app.state.db,
            UserId(id),
            refresh_column,
            &old,
            keys.encrypt_legacy(plain),
        )
        .await
        .unwrap();
    }

    // The next start (another instance on the same database) seals them again.
    let next = crate::helpers::start_another_instance(&ctx.app, |_| {}).await;
    let conn = connections::find(&next.state.db, UserId(id)).await.unwrap().unwrap();
    let stored_access = conn.access_token_enc.as_deref().unwrap();
    assert!(stored_access.starts_with("v2:"), "{stored_access}");
    assert_eq!(keys.decrypt(stored_access, id, Secret::AccessToken).unwrap(), access);
    let stored_refresh = conn.refresh_token_enc.as_deref().unwrap();
    assert_eq!(keys.decrypt(stored_refresh, id, Secret::RefreshToken).unwrap(), refresh);
    // Bound to its owner: the same value under another user's id does not open.
    assert!(keys
        .decrypt(stored_access, uuid::Uuid::new_v4(), Secret::AccessToken)
        .is_err());
    // And the connection still works: a slot created through the new instance is pushed.
    let slot = next
        .create_slot(
            &user,
            &crate::helpers::slot_body("after the upgrade", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"),
        )
        .await;
    next.wait_until_pushed(slot["id"].as_str().unwrap()).await;
}
