//! OAuth flow helpers shared by the OAuth and control tests.

use crate::helpers::TestGoogle;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use slotsync::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS};

/// Scopes slotsync asks for.
pub const SCOPES: &str = "openid email https://www.googleapis.com/auth/calendar";

/// Runs the authorization request; returns the redirect target's query parameters.
pub async fn authorize(google: &TestGoogle, params: &[(&str, &str)]) -> (u16, Vec<(String, String)>) {
    let resp = google
        .http
        .get(google.url("/o/oauth2/v2/auth"))
        .query(params)
        .send()
        .await
        .expect("authorize answers");
    let status = resp.status().as_u16();
    let pairs = resp
        .headers()
        .get("location")
        .and_then(|l| url::Url::parse(l.to_str().ok()?).ok())
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    (status, pairs)
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Authorization request for the default client with S256 PKCE; returns the code.
pub async fn code_for(google: &TestGoogle, email: &str, verifier: &str, scope: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let (status, pairs) = authorize(
        google,
        &[
            ("client_id", DEFAULT_CLIENT_ID),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
            ("response_type", "code"),
            ("scope", scope),
            ("access_type", "offline"),
            ("prompt", "consent"),
            ("state", "opaque-state"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", email),
        ],
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(param(&pairs, "state"), Some("opaque-state"));
    param(&pairs, "code").expect("code").to_owned()
}

/// Posts a form to `/token` (client credentials in the form unless `basic`).
pub async fn token_request(google: &TestGoogle, form: &[(&str, &str)], basic: bool) -> (u16, Value) {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut req = google.http.post(google.url("/token"));
    if basic {
        let creds = STANDARD.encode(format!("{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}"));
        req = req.header("Authorization", format!("Basic {creds}"));
    } else {
        fields.push(("client_id", DEFAULT_CLIENT_ID));
        fields.push(("client_secret", DEFAULT_CLIENT_SECRET));
    }
    let resp = req.form(&fields).send().await.expect("token answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Full flow: returns the token response of the code exchange.
pub async fn connect(google: &TestGoogle, email: &str, scope: &str) -> Value {
    let verifier = "a-verifier-that-is-long-enough-to-be-valid-0123456789";
    let code = code_for(google, email, verifier, scope).await;
    let (status, body) = token_request(
        google,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
            ("code_verifier", verifier),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// What one authorization produced: the redirect's `scope` and the code exchange's answer.
pub struct Connected {
    pub redirect_scope: String,
    pub tokens: Value,
}

impl Connected {
    /// The access token.
    pub fn access(&self) -> &str {
        self.tokens["access_token"].as_str().expect("access token")
    }
}

/// Full flow for `email` (as `login_hint`) with `extra` authorization parameters, e.g.
/// `("include_granted_scopes", "true")`; asserts every step succeeds.
pub async fn connect_with(google: &TestGoogle, email: &str, scope: &str, extra: &[(&str, &str)]) -> Connected {
    let mut params = vec![
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
        ("response_type", "code"),
        ("scope", scope),
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("login_hint", email),
    ];
    params.extend_from_slice(extra);
    let (status, pairs) = authorize(google, &params).await;
    assert_eq!(status, 302);
    let code = param(&pairs, "code").unwrap_or_else(|| panic!("no code in {pairs:?}"));
    let redirect_scope = param(&pairs, "scope").expect("scope in the redirect").to_owned();
    let (status, tokens) = token_request(
        google,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", DEFAULT_REDIRECT_URIS[0]),
        ],
        false,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    Connected { redirect_scope, tokens }
}
