//! OAuth 2.0 token endpoint (`authorization_code`, `refresh_token`) and revocation.

use super::consent::same_scope;
use super::errors::OAuthError;
use super::faults::{BrokenClient, Fault};
use super::pipeline::{json_response, SCOPE_CALENDAR};
use super::state::{AccessToken, RefreshToken, Shared, State};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{Duration as ChronoDuration, Utc};
use poem::web::Data;
use poem::{handler, IntoResponse, Request, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Client id recorded on tokens minted by the control API.
pub const CONTROL_CLIENT_ID: &str = "emulator-control";

/// A freshly issued grant.
struct Issued {
    /// Refresh token the new access token belongs to (new or presented).
    refresh_token: Option<String>,
    scopes: Vec<String>,
    email: String,
    client_id: String,
}

/// Mints an access token (and optionally a refresh token) for `email`.
pub fn issue_access_token(
    st: &mut State,
    lifetime: std::time::Duration,
    email: &str,
    client_id: &str,
    scopes: &[String],
    refresh_token: Option<String>,
) -> String {
    let token = st.new_token("ya29.");
    let lifetime = ChronoDuration::from_std(lifetime).unwrap_or(ChronoDuration::seconds(3599));
    st.access_tokens.insert(
        token.clone(),
        AccessToken {
            email: email.to_owned(),
            client_id: client_id.to_owned(),
            scopes: scopes.to_vec(),
            expires_at: Utc::now() + lifetime,
            refresh_token,
            revoked: false,
        },
    );
    token
}

/// A control-API token with full calendar scope (no refresh token).
pub fn issue_control_token(st: &mut State, lifetime: std::time::Duration, email: &str) -> String {
    let scopes = vec![SCOPE_CALENDAR.to_owned(), "openid".to_owned(), "email".to_owned()];
    issue_access_token(st, lifetime, email, CONTROL_CLIENT_ID, &scopes, None)
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Client credentials from HTTP Basic (URL-encoded parts, RFC 6749 §2.3.1) or the form.
fn client_credentials(req: &Request, f: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(basic) = req.header("Authorization").and_then(|h| h.strip_prefix("Basic ")) {
        let decoded = STANDARD.decode(basic.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Some((unescape(id), unescape(secret)));
    }
    Some((
        f.get("client_id")?.clone(),
        f.get("client_secret").cloned().unwrap_or_default(),
    ))
}

fn pkce_matches(challenge: &str, method: &str, verifier: &str) -> bool {
    match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
        _ => verifier == challenge,
    }
}

/// An unsigned OpenID id_token; `email` claims only with the `email` scope (as Google).
fn id_token(base_url: &str, st: &State, issued: &Issued) -> String {
    let now = Utc::now().timestamp();
    let sub = st.users.get(&issued.email).map(|u| u.sub.clone()).unwrap_or_default();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let mut claims = json!({"iss": base_url, "aud": issued.client_id, "azp": issued.client_id,
                            "sub": sub, "iat": now, "exp": now + 3599});
    if issued.scopes.iter().any(|s| same_scope(s, "email")) {
        claims["email"] = json!(issued.email);
        claims["email_verified"] = json!(true);
    }
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{claims}.")
}

/// `POST /token`.
#[handler]
pub fn token_endpoint(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let f = form(&body);
    let grant = f.get("grant_type").cloned().unwrap_or_default();
    let mut guard = shared.state.lock();
    let st = &mut *guard;
    let fault = {
        let State { faults, rng, .. } = st;
        faults.draw_exact("oauth.token", rng)
    };
    if let Some(Fault::Status(code)) = fault {
        st.stats.record_fault("oauth.token", &code.to_string());
        return finish(
            st,
            &grant,
            Err(OAuthError::new(code, "internal_failure", "Injected fault")),
        );
    }
    // The deployment's OAuth client broken (deleted or disabled in the console): every
    // grant is refused until the fault plan drops `token_endpoint`.
    if let Some(broken) = st.faults.token_endpoint {
        let error = match broken {
            BrokenClient::InvalidClient => OAuthError::new(401, "invalid_client", "Unauthorized"),
            BrokenClient::DeletedClient => OAuthError::deleted_client(),
        };
        st.stats.record_fault("oauth.token", error.error);
        return finish(st, &grant, Err(error));
    }
    let result = exchange(shared, st, req, &f, &grant);
    if fault == Some(Fault::LostResponse) {
        st.stats.record_fault("oauth.token", "lost_response");
        return finish(
            st,
            &grant,
            Err(OAuthError::new(503, "internal_failure", "Injected fault")),
        );
    }
    finish(st, &grant, result)
}

fn finish(st: &mut State, grant: &str, result: Result<Value, OAuthError>) -> Response {
    let status = result.as_ref().map(|_| 200).unwrap_or_else(|e| e.status);
    st.stats.record("oauth.token", status);
    if matches!(grant, "authorization_code" | "refresh_token") {
        st.stats.record(&format!("oauth.token.{grant}"), status);
    }
    match result {
        Ok(body) => {
            let mut resp = json_response(200, &body);
            resp.headers_mut().insert(
                "Cache-Control",
                "no-cache, no-store, max-age=0, must-revalidate"
                    .parse()
                    .expect("static header"),
            );
            resp.headers_mut()
                .insert("Pragma", "no-cache".parse().expect("static header"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

fn exchange(
    shared: &Shared,
    st: &mut State,
    req: &Request,
    f: &HashMap<String, String>,
    grant: &str,
) -> Result<Value, OAuthError> {
    let (client_id, secret) = client_credentials(req, f)
        .ok_or_else(|| OAuthError::invalid_request("Could not determine client ID from request."))?;
    let client = st
        .clients
        .get(&client_id)
        .cloned()
        .ok_or_else(OAuthError::invalid_client)?;
    if client.client_secret != secret {
        return Err(OAuthError::new(401, "invalid_client", "Unauthorized"));
    }
    let issued = match grant {
        "authorization_code" => exchange_code(st, f, &client_id)?,
        "refresh_token" => {
            let token = f
                .get("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
            let grant = st
                .refresh_tokens
                .get(token)
                .filter(|t| !t.revoked)
                .cloned()
                .ok_or_else(OAuthError::expired_or_revoked)?;
            if grant.client_id != client_id {
                return Err(OAuthError::new(400, "unauthorized_client", "Unauthorized"));
            }
            Issued {
                refresh_token: Some(token.clone()),
                scopes: grant.scopes,
                email: grant.email,
                client_id,
            }
        }
        "" => return Err(OAuthError::invalid_request("Missing required parameter: grant_type")),
        other => {
            return Err(OAuthError::new(
                400,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            ))
        }
    };
    let lifetime = shared.config.access_token_lifetime;
    let parent = issued.refresh_token.clone();
    let access = issue_access_token(st, lifetime, &issued.email, &issued.client_id, &issued.scopes, parent);
    let mut body = json!({
        "access_token": access,
        "expires_in": lifetime.as_secs(),
        "token_type": "Bearer",
        "scope": issued.scopes.join(" "),
    });
    if grant == "authorization_code" {
        if let Some(refresh) = &issued.refresh_token {
            body["refresh_token"] = json!(refresh);
        }
    }
    if issued.scopes.iter().any(|s| s == "openid") {
        body["id_token"] = json!(id_token(&shared.base_url, st, &issued));
    }
    Ok(body)
}

fn exchange_code(st: &mut State, f: &HashMap<String, String>, client_id: &str) -> Result<Issued, OAuthError> {
    let code = f
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: code"))?;
    let grant = st
        .codes
        .get(code)
        .cloned()
        .ok_or_else(|| OAuthError::invalid_grant("Malformed auth code."))?;
    if grant.used || grant.expires_at <= Utc::now() {
        return Err(OAuthError::expired_or_revoked());
    }
    if grant.client_id != client_id {
        return Err(OAuthError::invalid_grant("Unauthorized"));
    }
    if f.get("redirect_uri") != Some(&grant.redirect_uri) {
        return Err(OAuthError::new(400, "redirect_uri_mismatch", "Bad Request"));
    }
    if let Some((challenge, method)) = &grant.challenge {
        let verifier = f
            .get("code_verifier")
            .ok_or_else(|| OAuthError::invalid_grant("Missing code verifier."))?;
        if !pkce_matches(challenge, method, verifier) {
            return Err(OAuthError::invalid_grant("Invalid code verifier."));
        }
    }
    if let Some(c) = st.codes.get_mut(code) {
        c.used = true;
    }
    let refresh_token = grant.offline.then(|| {
        let token = st.new_token("1//");
        st.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                email: grant.email.clone(),
                client_id: client_id.to_owned(),
                scopes: grant.scopes.clone(),
                revoked: false,
            },
        );
        token
    });
    Ok(Issued {
        refresh_token,
        scopes: grant.scopes,
        email: grant.email,
        client_id: client_id.to_owned(),
    })
}

/// Revokes a refresh token and every access token minted from it.
pub fn revoke_refresh(st: &mut State, refresh: &str) {
    if let Some(r) = st.refresh_tokens.get_mut(refresh) {
        r.revoked = true;
    }
    for t in st.access_tokens.values_mut() {
        if t.refresh_token.as_deref() == Some(refresh) {
            t.revoked = true;
        }
    }
}

/// Revokes every token of a user and forgets every grant the user gave.
pub fn revoke_user(st: &mut State, email: &str) {
    st.forget_grants(email, None);
    for t in st.access_tokens.values_mut().filter(|t| t.email == email) {
        t.revoked = true;
    }
    for r in st.refresh_tokens.values_mut().filter(|r| r.email == email) {
        r.revoked = true;
    }
}

/// `POST /revoke` with `token=` in the form or the query.
#[handler]
pub fn revoke(req: &Request, body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let mut f = form(&body);
    if !f.contains_key("token") {
        f = form(req.uri().query().unwrap_or("").as_bytes());
    }
    let mut guard = shared.state.lock();
    let st = &mut *guard;
    let fault = {
        let State { faults, rng, .. } = st;
        faults.draw_exact("oauth.revoke", rng)
    };
    let invalid = || OAuthError::new(400, "invalid_token", "Token expired or revoked");
    let result = (|| {
        if let Some(Fault::Status(code)) = fault {
            st.stats.record_fault("oauth.revoke", &code.to_string());
            return Err(OAuthError::new(code, "internal_failure", "Injected fault"));
        }
        let token = f.get("token").ok_or_else(invalid)?;
        if let Some(access) = st.access_tokens.get(token).cloned() {
            if access.revoked || access.expires_at <= Utc::now() {
                return Err(invalid());
            }
            if let Some(t) = st.access_tokens.get_mut(token) {
                t.revoked = true;
            }
            if let Some(refresh) = access.refresh_token {
                revoke_refresh(st, &refresh);
            }
            st.forget_grants(&access.email, Some(&access.client_id));
        } else if let Some(refresh) = st.refresh_tokens.get(token).filter(|r| !r.revoked).cloned() {
            revoke_refresh(st, token);
            st.forget_grants(&refresh.email, Some(&refresh.client_id));
        } else {
            return Err(invalid());
        }
        if fault == Some(Fault::LostResponse) {
            st.stats.record_fault("oauth.revoke", "lost_response");
            return Err(OAuthError::new(503, "internal_failure", "Injected fault"));
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            st.stats.record("oauth.revoke", 200);
            json_response(200, &json!({}))
        }
        Err(e) => {
            st.stats.record("oauth.revoke", e.status);
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_the_rfc_7636_example_and_plain_compares_verbatim() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "S256",
            verifier
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "S256",
            "x"
        ));
        assert!(pkce_matches("abc", "plain", "abc"));
    }
}
