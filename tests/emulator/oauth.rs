//! OAuth 2.0: authorization code flow, PKCE, refresh, revoke, userinfo, discovery.

use crate::helpers::{reason, TestGoogle};
use crate::oauth_flow::{authorize, code_for, connect, param, token_request, SCOPES};
use reqwest::Method;
use serde_json::{json, Value};
use slotsync::emulator::{DEFAULT_CLIENT_ID, DEFAULT_REDIRECT_URIS};

#[tokio::test]
async fn code_flow_with_s256_pkce_issues_tokens_that_the_calendar_api_accepts() {
    let google = TestGoogle::start().await;
    let tokens = connect(&google, "ann@example.com", SCOPES).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["scope"], SCOPES);
    assert!(tokens["refresh_token"].as_str().is_some_and(|t| t.starts_with("1//")));
    assert!(tokens["id_token"].as_str().is_some());
    let access = tokens["access_token"].as_str().unwrap();
    let list = google.get("/calendar/v3/users/me/calendarList", access).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"][0]["id"], "ann@example.com");
    assert_eq!(list.body["items"][0]["primary"], true);
}

#[tokio::test]
async fn refresh_with_http_basic_client_auth_issues_a_new_access_token_without_refresh_token() {
    let google = TestGoogle::start().await;
    let tokens = connect(&google, "ann@example.com", SCOPES).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = token_request(
        &google,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["access_token"], tokens["access_token"]);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["expires_in"], 3599);
    let stats = google.stats().await;
    assert_eq!(stats["requests"]["oauth.token.authorization_code"]["200"], 1);
    assert_eq!(stats["requests"]["oauth.token.refresh_token"]["200"], 1);
    assert_eq!(stats["requests"]["oauth.token"]["200"], 2);
}

#[tokio::test]
async fn a_wrong_code_verifier_is_invalid_grant_and_a_used_code_cannot_be_reused() {
    let google = TestGoogle::start().await;
    let verifier = "the-right-verifier-0123456789-0123456789-0123456789";
    let code = code_for(&google, "ann@example.com", verifier, SCOPES).await;
    let exchange = |v: &'static str| {
        let code = code.clone();
        let google = &google;
        async move {
            token_request(
                google,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
                    ("code_verifier", v),
                ],
                false,
            )
            .await
        }
    };
    let (status, body) = exchange("the-wrong-verifier-0123456789-0123456789-0123456789").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = exchange("the-right-verifier-0123456789-0123456789-0123456789").await;
    assert_eq!(status, 200);
    let (status, body) = exchange("the-right-verifier-0123456789-0123456789-0123456789").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = token_request(
        &google,
        &[
            ("grant_type", "authorization_code"),
            ("code", "4/unknown"),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
        ],
        false,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn plain_pkce_accepts_the_verbatim_verifier_only() {
    let google = TestGoogle::start().await;
    let (status, pairs) = authorize(
        &google,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[1]),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("code_challenge", "plain-challenge"),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(status, 302);
    let code = param(&pairs, "code").unwrap().to_owned();
    let form = |v: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[1]),
            ("code_verifier", v),
        ]
    };
    assert_eq!(token_request(&google, &form("other"), false).await.0, 400);
    let (status, body) = token_request(&google, &form("plain-challenge"), false).await;
    assert_eq!(status, 200);
    // Without access_type=offline no refresh token is issued.
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn revoking_the_access_token_revokes_its_refresh_token_too() {
    let google = TestGoogle::start().await;
    let tokens = connect(&google, "ann@example.com", SCOPES).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let revoke = |t: String| {
        let google = &google;
        async move {
            let r = google
                .http
                .post(google.url("/revoke"))
                .form(&[("token", t)])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(revoke(access.to_owned()).await.0, 200);
    let (status, body) = token_request(
        &google,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        false,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    let call = google.get("/calendar/v3/users/me/calendarList", access).await;
    assert_eq!(call.status, 401);
    assert_eq!(reason(&call), "authError");
    assert_eq!(
        revoke(access.to_owned()).await,
        (
            400,
            json!({"error": "invalid_token", "error_description": "Token expired or revoked"})
        )
    );
    assert_eq!(
        google.stats().await["requests"]["oauth.revoke"],
        json!({"200": 1, "400": 1})
    );
}

#[tokio::test]
async fn revoking_the_refresh_token_invalidates_access_tokens_minted_from_it() {
    let google = TestGoogle::start().await;
    let tokens = connect(&google, "ann@example.com", SCOPES).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = google
        .http
        .post(google.url("/revoke"))
        .query(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call = google
        .get(
            "/calendar/v3/users/me/calendarList",
            tokens["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(call.status, 401);
}

#[tokio::test]
async fn authorize_rejects_unknown_clients_and_unregistered_redirect_uris() {
    let google = TestGoogle::start().await;
    let base = |client: &'static str, redirect: &'static str| {
        vec![
            ("client_id", client),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", SCOPES),
        ]
    };
    assert_eq!(
        authorize(&google, &base("nobody", DEFAULT_REDIRECT_URIS[0])).await.0,
        401
    );
    assert_eq!(
        authorize(&google, &base(DEFAULT_CLIENT_ID, "http://evil.example/cb"))
            .await
            .0,
        400
    );
    let mut no_scope = base(DEFAULT_CLIENT_ID, DEFAULT_REDIRECT_URIS[0]);
    no_scope.pop();
    assert_eq!(authorize(&google, &no_scope).await.0, 400);
    let mut token_type = base(DEFAULT_CLIENT_ID, DEFAULT_REDIRECT_URIS[0]);
    token_type[2] = ("response_type", "token");
    let (status, pairs) = authorize(&google, &token_type).await;
    assert_eq!(
        (status, param(&pairs, "error")),
        (302, Some("unsupported_response_type"))
    );
}

#[tokio::test]
async fn a_client_registered_through_the_control_api_can_run_the_flow() {
    let google = TestGoogle::start().await;
    let a = google
        .control(
            "/clients",
            json!({"client_id": "app", "client_secret": "s3",
        "redirect_uris": ["http://127.0.0.1:45678/cb"]}),
        )
        .await;
    assert_eq!(a.status, 200);
    let (status, pairs) = authorize(
        &google,
        &[
            ("client_id", "app"),
            ("redirect_uri", "http://127.0.0.1:45678/cb"),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("state", "s"),
        ],
    )
    .await;
    assert_eq!(status, 302);
    let code = param(&pairs, "code").unwrap();
    let r = google
        .http
        .post(google.url("/token"))
        .basic_auth("app", Some("s3"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:45678/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_denied_consent_redirects_with_access_denied_and_the_state() {
    let google = TestGoogle::start().await;
    let a = google
        .send(
            Method::PUT,
            "/_emulator/consent",
            None,
            Some(json!({"decision": "deny"})),
            &[],
        )
        .await;
    assert_eq!(a.status, 200);
    let (status, pairs) = authorize(
        &google,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("state", "xyz"),
        ],
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert_eq!(param(&pairs, "state"), Some("xyz"));
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let google = TestGoogle::start().await;
    let r = google
        .http
        .post(google.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "1//x"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
}

#[tokio::test]
async fn userinfo_returns_the_default_user_when_no_login_hint_is_given() {
    let google = TestGoogle::start().await;
    let (_, pairs) = authorize(
        &google,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
            ("response_type", "code"),
            ("scope", SCOPES),
        ],
    )
    .await;
    let code = param(&pairs, "code").unwrap();
    let (_, tokens) = token_request(
        &google,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
        ],
        false,
    )
    .await;
    let info = google
        .get("/v1/userinfo", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info.status, 200);
    assert_eq!(info.body["email"], "user@example.com");
    assert_eq!(info.body["email_verified"], true);
    assert!(info.body["sub"].as_str().is_some_and(|s| s.len() == 21));
    let bad = google.get("/v1/userinfo", "ya29.nope").await;
    assert_eq!(bad.status, 401);
    assert!(bad.headers.contains_key("www-authenticate"));
}

#[tokio::test]
async fn discovery_names_the_emulators_own_endpoints() {
    let google = TestGoogle::start().await;
    let d = google
        .send(Method::GET, "/.well-known/openid-configuration", None, None, &[])
        .await
        .body;
    let base = google.base_url();
    assert_eq!(d["issuer"], base);
    assert_eq!(d["authorization_endpoint"], format!("{base}/o/oauth2/v2/auth"));
    assert_eq!(d["token_endpoint"], format!("{base}/token"));
    assert_eq!(d["revocation_endpoint"], format!("{base}/revoke"));
    assert_eq!(d["userinfo_endpoint"], format!("{base}/v1/userinfo"));
    assert_eq!(d["code_challenge_methods_supported"], json!(["plain", "S256"]));
}

#[tokio::test]
async fn an_expired_access_token_is_401_but_its_refresh_token_still_works() {
    let google = TestGoogle::start().await;
    let tokens = connect(&google, "ann@example.com", SCOPES).await;
    let access = tokens["access_token"].as_str().unwrap();
    google
        .control("/tokens/expire", json!({"email": "ann@example.com"}))
        .await;
    let call = google.get("/calendar/v3/calendars/primary/events", access).await;
    assert_eq!(call.status, 401);
    assert_eq!(
        call.headers["www-authenticate"],
        r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#
    );
    let (status, _) = token_request(
        &google,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_read_only_scope_may_list_but_not_write() {
    let google = TestGoogle::start().await;
    let tokens = connect(
        &google,
        "ann@example.com",
        "https://www.googleapis.com/auth/calendar.events.readonly",
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        google.get("/calendar/v3/calendars/primary/events", access).await.status,
        200
    );
    let write = google
        .send(
            Method::POST,
            "/calendar/v3/calendars/primary/events",
            Some(access),
            Some(crate::helpers::timed_event("x", 1, 9)),
            &[],
        )
        .await;
    assert_eq!(write.status, 403);
    assert_eq!(reason(&write), "insufficientPermissions");
}
