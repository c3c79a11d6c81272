//! OAuth 2.0 authorization endpoint, OpenID discovery, JWKS and userinfo.

use super::consent::{is_email, same_scope, union, ConsentDecision};
use super::errors::OAuthError;
use super::pipeline::bearer_token;
use super::state::{AuthCode, Shared};
use chrono::{Duration as ChronoDuration, Utc};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{handler, IntoResponse, Request, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// User approved when the authorization request names no `login_hint`.
pub const DEFAULT_USER: &str = "user@example.com";

fn query_map(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn redirect(to: url::Url) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("Location", to.as_str())
        .finish()
}

/// `GET /o/oauth2/v2/auth`: checks the request and answers as the consent screen is set
/// (see [`super::consent`]): denies, or redirects with `code`, the granted `scope` and
/// `state`. The account is the consent's `account`, else `login_hint`, else
/// [`DEFAULT_USER`]; with `include_granted_scopes=true` the grant also covers what the
/// account granted this client earlier and still holds.
#[handler]
pub fn authorize(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let q = query_map(req);
    let mut guard = shared.state.lock();
    let st = &mut *guard;
    let result = (|| -> Result<url::Url, OAuthError> {
        let client_id = q
            .get("client_id")
            .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: client_id"))?;
        let client = st
            .clients
            .get(client_id)
            .cloned()
            .ok_or_else(OAuthError::invalid_client)?;
        let redirect_uri = q
            .get("redirect_uri")
            .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: redirect_uri"))?;
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(OAuthError::new(
                400,
                "redirect_uri_mismatch",
                "The redirect URI in the request does not match the ones authorized for the OAuth client.",
            ));
        }
        let mut target = url::Url::parse(redirect_uri)
            .map_err(|_| OAuthError::invalid_request("Invalid parameter value for redirect_uri"))?;
        let state_param = q.get("state").cloned();
        let mut back = |pairs: &[(&str, &str)]| {
            {
                let mut qp = target.query_pairs_mut();
                for (k, v) in pairs {
                    qp.append_pair(k, v);
                }
                if let Some(s) = &state_param {
                    qp.append_pair("state", s);
                }
            }
            target.clone()
        };
        if q.get("response_type").map(String::as_str) != Some("code") {
            return Ok(back(&[("error", "unsupported_response_type")]));
        }
        let scope = q
            .get("scope")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: scope"))?;
        let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
            (None, _) => None,
            (Some(c), method) => {
                let method = method.map(String::as_str).unwrap_or("plain");
                if !matches!(method, "S256" | "plain") {
                    return Err(OAuthError::invalid_request("Invalid code_challenge_method value."));
                }
                Some((c.clone(), method.to_owned()))
            }
        };
        let requested: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
        let granted_now = st.consent.grant(&requested);
        // Nothing left ticked: the user granted nothing, which the client sees as a refusal.
        if st.consent.decision == ConsentDecision::Deny || granted_now.is_empty() {
            return Ok(back(&[("error", "access_denied")]));
        }
        let email = st
            .consent
            .account
            .clone()
            .or_else(|| q.get("login_hint").filter(|h| is_email(h)).cloned())
            .unwrap_or_else(|| DEFAULT_USER.to_owned());
        st.ensure_user(&email, None);
        let earlier = st.standing_grant(&email, &client.client_id);
        let scopes = if q.get("include_granted_scopes").map(String::as_str) == Some("true") {
            union(&granted_now, &earlier)
        } else {
            granted_now.clone()
        };
        st.record_grant(&email, &client.client_id, &granted_now);
        let code = format!(
            "4/0A{}",
            st.random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 70)
        );
        let lifetime =
            ChronoDuration::from_std(shared.config.auth_code_lifetime).unwrap_or(ChronoDuration::minutes(10));
        st.codes.insert(
            code.clone(),
            AuthCode {
                client_id: client.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                email,
                scopes: scopes.clone(),
                challenge,
                offline: q.get("access_type").map(String::as_str) == Some("offline"),
                expires_at: Utc::now() + lifetime,
                used: false,
            },
        );
        let scope_out = scopes.join(" ");
        Ok(back(&[("code", &code), ("scope", &scope_out)]))
    })();
    match result {
        Ok(url) => {
            st.stats.record("oauth.authorize", 302);
            redirect(url)
        }
        Err(e) => {
            st.stats.record("oauth.authorize", e.status);
            e.into_response()
        }
    }
}

/// `GET /.well-known/openid-configuration`, naming the emulator's own endpoints.
#[handler]
pub fn discovery(Data(shared): Data<&Arc<Shared>>) -> Response {
    let base = &shared.base_url;
    let body = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/v1/userinfo"),
        "revocation_endpoint": format!("{base}/revoke"),
        "jwks_uri": format!("{base}/oauth2/v3/certs"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["none"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
    });
    shared.state.lock().stats.record("oauth.discovery", 200);
    super::pipeline::json_response(200, &body)
}

/// `GET /oauth2/v3/certs`: an empty key set (id tokens are unsigned).
#[handler]
pub fn certs() -> Response {
    super::pipeline::json_response(200, &json!({"keys": []}))
}

/// `GET /v1/userinfo` (also `/oauth2/v3/userinfo`).
#[handler]
pub fn userinfo(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let mut st = shared.state.lock();
    let token = bearer_token(req).and_then(|t| st.access_tokens.get(&t).cloned());
    let Some(token) = token.filter(|t| !t.revoked && t.expires_at > Utc::now()) else {
        st.stats.record("oauth.userinfo", 401);
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(
                "WWW-Authenticate",
                r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#,
            )
            .content_type("application/json; charset=utf-8")
            .body(json!({"error": "invalid_request", "error_description": "Invalid Credentials"}).to_string());
    };
    let Some(user) = st.users.get(&token.email).cloned() else {
        st.stats.record("oauth.userinfo", 401);
        return OAuthError::new(401, "invalid_request", "Invalid Credentials").into_response();
    };
    let mut body = json!({"sub": user.sub, "name": user.name});
    let email_scope = token.scopes.iter().any(|s| same_scope(s, "email"));
    if email_scope {
        body["email"] = json!(user.email);
        body["email_verified"] = json!(true);
    }
    st.stats.record("oauth.userinfo", 200);
    super::pipeline::json_response(200, &body)
}

/// `GET /oauth2/v3/tokeninfo?access_token=…`: what an access token grants.
#[handler]
pub fn tokeninfo(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let q = query_map(req);
    let st = shared.state.lock();
    let now = Utc::now();
    let token = q
        .get("access_token")
        .and_then(|t| st.access_tokens.get(t))
        .filter(|t| !t.revoked && t.expires_at > now);
    match token {
        Some(t) => super::pipeline::json_response(
            200,
            &json!({
                "aud": t.client_id,
                "azp": t.client_id,
                "email": t.email,
                "scope": t.scopes.join(" "),
                "expires_in": (t.expires_at - now).num_seconds().to_string(),
            }),
        ),
        None => OAuthError::invalid_request("Invalid Value").into_response(),
    }
}
