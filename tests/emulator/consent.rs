//! Granular consent: the consent control (ticked scopes, picked account), what the
//! redirect, the token endpoint, tokeninfo and the Calendar API make of a partial grant,
//! and `include_granted_scopes` merging earlier grants until they are revoked.

use crate::helpers::{google_error_body, reason, timed_event, TestGoogle};
use crate::oauth_flow::{authorize, connect_with, param, token_request, SCOPES};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use slotsync::emulator::{DEFAULT_CLIENT_ID, DEFAULT_REDIRECT_URIS};
use std::collections::BTreeSet;

const CALENDAR: &str = "https://www.googleapis.com/auth/calendar";
const INCLUDE: &[(&str, &str)] = &[("include_granted_scopes", "true")];

fn scope_set(scope: &str) -> BTreeSet<&str> {
    scope.split_whitespace().collect()
}

fn id_token_claims(tokens: &Value) -> Value {
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let payload = id_token.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

async fn tick_only(google: &TestGoogle, scopes: &[&str]) {
    let a = google
        .put_consent(json!({"decision": "approve", "scopes": scopes}))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

async fn tokeninfo_scope(google: &TestGoogle, access: &str) -> String {
    let a = google
        .send(
            Method::GET,
            &format!("/oauth2/v3/tokeninfo?access_token={access}"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["scope"].as_str().expect("scope").to_owned()
}

async fn refresh_scope(google: &TestGoogle, tokens: &Value) -> String {
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let (status, body) = token_request(
        google,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        false,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["scope"].as_str().expect("scope").to_owned()
}

async fn calendar_list_status(google: &TestGoogle, access: &str) -> u16 {
    google.get("/calendar/v3/users/me/calendarList", access).await.status
}

#[tokio::test]
async fn a_partial_consent_grants_only_the_ticked_scopes_in_the_redirect_token_tokeninfo_and_refresh() {
    let google = TestGoogle::start().await;
    let echo = google
        .put_consent(json!({"decision": "approve", "scopes": ["openid", "email"]}))
        .await;
    assert_eq!(
        (echo.status, echo.body),
        (
            200,
            json!({"decision": "approve", "scopes": ["openid", "email"], "account": null})
        )
    );
    let c = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    assert_eq!(c.redirect_scope, "openid email");
    assert_eq!(c.tokens["scope"], "openid email");
    assert_eq!(tokeninfo_scope(&google, c.access()).await, "openid email");
    assert_eq!(refresh_scope(&google, &c.tokens).await, "openid email");
    let info = google.get("/v1/userinfo", c.access()).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.body["email"], "ann@example.com");
}

#[tokio::test]
async fn a_calendar_call_with_a_partially_granted_token_answers_403_insufficient_permissions() {
    let google = TestGoogle::start().await;
    tick_only(&google, &["openid", "email"]).await;
    let c = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    let list = google.get("/calendar/v3/calendars/primary/events", c.access()).await;
    assert_eq!(list.status, 403);
    assert_eq!(
        list.body,
        json!({"error": {
            "code": 403,
            "message": "Request had insufficient authentication scopes.",
            "errors": [{"domain": "global", "reason": "insufficientPermissions",
                        "message": "Insufficient Permission"}],
            "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                         "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "domain": "googleapis.com",
                         "metadata": {"service": "calendar-json.googleapis.com",
                                      "method": "calendar.v3.Events.List"}}],
        }})
    );
    assert_eq!(
        list.headers["www-authenticate"],
        r#"Bearer realm="https://accounts.google.com/", error="insufficient_scope""#
    );
    let write = google
        .send(
            Method::POST,
            "/calendar/v3/calendars/primary/events",
            Some(c.access()),
            Some(timed_event("not allowed", 3, 9)),
            &[],
        )
        .await;
    assert_eq!((write.status, reason(&write)), (403, "insufficientPermissions"));

    let hub = google.hub_with_token(c.access());
    let err = hub.calendar_list().list().doit().await.unwrap_err();
    let body = google_error_body(&err);
    assert_eq!(body["error"]["code"], 403);
    assert_eq!(body["error"]["errors"][0]["reason"], "insufficientPermissions");
}

#[tokio::test]
async fn a_consent_never_grants_a_scope_that_was_not_requested() {
    let google = TestGoogle::start().await;
    tick_only(
        &google,
        &["openid", "https://www.googleapis.com/auth/calendar.readonly"],
    )
    .await;
    let c = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    assert_eq!(c.redirect_scope, "openid");
    assert_eq!(c.tokens["scope"], "openid");
    assert_eq!(calendar_list_status(&google, c.access()).await, 403);
}

#[tokio::test]
async fn a_consent_that_leaves_no_requested_scope_ticked_redirects_with_access_denied() {
    let google = TestGoogle::start().await;
    tick_only(&google, &["https://www.googleapis.com/auth/drive"]).await;
    let (status, pairs) = authorize(
        &google,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
            ("response_type", "code"),
            ("scope", SCOPES),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(param(&pairs, "error"), Some("access_denied"));
    assert_eq!(param(&pairs, "state"), Some("s1"));
    assert_eq!(param(&pairs, "code"), None);
}

#[tokio::test]
async fn a_later_full_consent_with_include_granted_scopes_grants_every_requested_scope() {
    let google = TestGoogle::start().await;
    tick_only(&google, &["openid", "email"]).await;
    let partial = connect_with(&google, "ann@example.com", SCOPES, INCLUDE).await;
    assert_eq!(partial.redirect_scope, "openid email");
    assert_eq!(calendar_list_status(&google, partial.access()).await, 403);

    google.put_consent(json!({"decision": "approve"})).await;
    let full = connect_with(&google, "ann@example.com", SCOPES, INCLUDE).await;
    assert_eq!(scope_set(&full.redirect_scope), scope_set(SCOPES));
    assert_eq!(scope_set(full.tokens["scope"].as_str().unwrap()), scope_set(SCOPES));
    assert_eq!(calendar_list_status(&google, full.access()).await, 200);
}

#[tokio::test]
async fn include_granted_scopes_merges_an_earlier_grant_into_a_partial_re_consent() {
    let google = TestGoogle::start().await;
    tick_only(&google, &[CALENDAR]).await;
    let first = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    assert_eq!(first.redirect_scope, CALENDAR);

    tick_only(&google, &["openid", "email"]).await;
    let without = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    assert_eq!(
        without.tokens["scope"], "openid email",
        "without include_granted_scopes only this consent's scopes"
    );
    assert_eq!(calendar_list_status(&google, without.access()).await, 403);

    let merged = connect_with(&google, "ann@example.com", SCOPES, INCLUDE).await;
    let all = scope_set(SCOPES);
    assert_eq!(scope_set(&merged.redirect_scope), all);
    assert_eq!(scope_set(merged.tokens["scope"].as_str().unwrap()), all);
    assert_eq!(scope_set(&tokeninfo_scope(&google, merged.access()).await), all);
    assert_eq!(scope_set(&refresh_scope(&google, &merged.tokens).await), all);
    assert_eq!(calendar_list_status(&google, merged.access()).await, 200);
}

#[tokio::test]
async fn include_granted_scopes_does_not_merge_another_accounts_grant() {
    let google = TestGoogle::start().await;
    connect_with(&google, "bob@example.com", SCOPES, &[]).await;
    tick_only(&google, &["openid", "email"]).await;
    let ann = connect_with(&google, "ann@example.com", SCOPES, INCLUDE).await;
    assert_eq!(ann.tokens["scope"], "openid email");
}

#[tokio::test]
async fn revoking_a_token_forgets_the_earlier_grant_so_a_partial_consent_stays_partial() {
    let google = TestGoogle::start().await;
    let full = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    let r = google
        .http
        .post(google.url("/revoke"))
        .form(&[("token", full.access())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tick_only(&google, &["openid", "email"]).await;
    let after = connect_with(&google, "ann@example.com", SCOPES, INCLUDE).await;
    assert_eq!(after.redirect_scope, "openid email");
    assert_eq!(after.tokens["scope"], "openid email");
    assert_eq!(calendar_list_status(&google, after.access()).await, 403);
}

#[tokio::test]
async fn revoking_through_the_control_api_forgets_the_earlier_grant_too() {
    let google = TestGoogle::start().await;
    connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    let a = google
        .control("/tokens/revoke", json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(a.status, 200);
    tick_only(&google, &["openid", "email"]).await;
    let after = connect_with(&google, "ann@example.com", SCOPES, INCLUDE).await;
    assert_eq!(after.tokens["scope"], "openid email");
}

#[tokio::test]
async fn the_account_picked_on_the_consent_screen_overrides_login_hint() {
    let google = TestGoogle::start().await;
    let ann = google.control("/users", json!({"email": "ann@example.com"})).await;
    let ann_sub = ann.body["sub"].as_str().unwrap().to_owned();
    let a = google
        .put_consent(json!({"decision": "approve", "account": "bob@example.com"}))
        .await;
    assert_eq!(a.body["account"], "bob@example.com");

    let picked = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    let info = google.get("/v1/userinfo", picked.access()).await;
    assert_eq!(info.body["email"], "bob@example.com");
    let bob_sub = info.body["sub"].as_str().unwrap().to_owned();
    assert_ne!(bob_sub, ann_sub);
    let claims = id_token_claims(&picked.tokens);
    assert_eq!(
        (claims["sub"].as_str(), claims["email"].as_str()),
        (Some(bob_sub.as_str()), Some("bob@example.com"))
    );
    let list = google.get("/calendar/v3/users/me/calendarList", picked.access()).await;
    assert_eq!(list.body["items"][0]["id"], "bob@example.com");

    google.put_consent(json!({"decision": "approve"})).await;
    let hinted = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    let info = google.get("/v1/userinfo", hinted.access()).await;
    assert_eq!(info.body["email"], "ann@example.com");
    assert_eq!(info.body["sub"], ann_sub.as_str());
}

#[tokio::test]
async fn the_sub_of_an_account_is_stable_and_differs_between_accounts() {
    let google = TestGoogle::start().await;
    let sub_of = |c: &crate::oauth_flow::Connected| id_token_claims(&c.tokens)["sub"].clone();
    let ann1 = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    let ann2 = connect_with(&google, "ann@example.com", SCOPES, &[]).await;
    let bob = connect_with(&google, "bob@example.com", SCOPES, &[]).await;
    assert!(sub_of(&ann1).as_str().is_some_and(|s| s.len() == 21));
    assert_eq!(sub_of(&ann1), sub_of(&ann2));
    assert_ne!(sub_of(&ann1), sub_of(&bob));
    let info = google.get("/v1/userinfo", ann2.access()).await;
    assert_eq!(info.body["sub"], sub_of(&ann1));

    // Without the email scope the id_token still names the account by `sub` only.
    let no_email = connect_with(&google, "ann@example.com", &format!("openid {CALENDAR}"), &[]).await;
    let claims = id_token_claims(&no_email.tokens);
    assert_eq!(claims["sub"], sub_of(&ann1));
    assert!(claims.get("email").is_none(), "{claims}");
}

#[tokio::test]
async fn the_consent_setting_reads_back_until_changed_or_reset() {
    let google = TestGoogle::start().await;
    let get = || google.send(Method::GET, "/_emulator/consent", None, None, &[]);
    let default = json!({"decision": "approve", "scopes": null, "account": null});
    assert_eq!(get().await.body, default);
    let setting = json!({"decision": "approve", "scopes": ["openid"], "account": "bob@example.com"});
    google.put_consent(setting.clone()).await;
    assert_eq!(get().await.body, setting);
    connect_with(&google, "ann@example.com", SCOPES, &[]).await;

    assert_eq!(google.control("/reset", json!({})).await.status, 200);
    assert_eq!(get().await.body, default);
    tick_only(&google, &["openid"]).await;
    let after_reset = connect_with(&google, "bob@example.com", SCOPES, INCLUDE).await;
    assert_eq!(after_reset.tokens["scope"], "openid", "reset forgets grants");

    google.put_consent(json!({"decision": "approve"})).await;
    assert_eq!(get().await.body, default);
}

#[tokio::test]
async fn bad_consent_bodies_are_400_with_a_message_naming_the_problem() {
    let google = TestGoogle::start().await;
    let kept = json!({"decision": "approve", "scopes": ["openid"], "account": null});
    google.put_consent(kept.clone()).await;
    let cases = [
        (json!({"decision": "approve", "scopes": "openid"}), "`scopes`"),
        (json!({"decision": "approve", "scopes": ["openid", 7]}), "`scopes`"),
        (json!({"decision": "approve", "scopes": []}), "`scopes`"),
        (json!({"decision": "approve", "account": "not-an-email"}), "`account`"),
        (json!({"decision": "approve", "account": 42}), "`account`"),
        (json!({"decision": "maybe"}), "`decision`"),
        (json!({"scopes": ["openid"]}), "`decision`"),
        (json!({"decision": "approve", "scope": ["openid"]}), "`scope`"),
        (json!({"decision": "deny", "scopes": ["openid"]}), "approve"),
    ];
    for (body, names) in cases {
        let a = google.put_consent(body.clone()).await;
        assert_eq!(a.status, 400, "{body}");
        let message = a.body["error"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{body} → {message}");
    }
    let not_json = google
        .http
        .put(google.url("/_emulator/consent"))
        .body("{decision")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let now = google.send(Method::GET, "/_emulator/consent", None, None, &[]).await;
    assert_eq!(now.body, kept, "a refused body leaves the setting unchanged");
}

#[tokio::test]
async fn narrowing_a_grant_later_answers_403_insufficient_permissions() {
    let google = TestGoogle::start().await;
    let c = connect_with(&google, "ann@example.com", SCOPES, INCLUDE).await;
    assert_eq!(calendar_list_status(&google, c.access()).await, 200);
    let control = google.user_token("ann@example.com").await;

    let a = google
        .send(
            Method::POST,
            "/_emulator/tokens/narrow",
            None,
            Some(json!({"email": "ann@example.com", "scopes": ["openid", "email"]})),
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let list = google.get("/calendar/v3/calendars/primary/events", c.access()).await;
    assert_eq!((list.status, reason(&list)), (403, "insufficientPermissions"));
    // The refresh answers the narrowed scopes; the control API's own token is untouched.
    assert_eq!(
        scope_set(&refresh_scope(&google, &c.tokens).await),
        scope_set("openid email")
    );
    assert_eq!(calendar_list_status(&google, &control).await, 200);
    // A later consent with include_granted_scopes merges only what is still granted.
    let again = connect_with(&google, "ann@example.com", "openid email", INCLUDE).await;
    assert_eq!(scope_set(&again.redirect_scope), scope_set("openid email"));

    let bad = google
        .send(
            Method::POST,
            "/_emulator/tokens/narrow",
            None,
            Some(json!({"email": "ann@example.com"})),
            &[],
        )
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
}
