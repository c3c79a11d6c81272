//! `POST /_emulator/users/bulk`: many Google accounts at once, for load tests and
//! benchmarks — each with its primary calendar and a grant to a registered OAuth client
//! (an access token and a refresh token), as if each had consented. State only: no task
//! or timer per account, so 100 000 accounts cost memory (about a kilobyte each) and
//! nothing else until they are used.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration as ChronoDuration, Utc};
use poem::web::Data;
use poem::{handler, Response};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

use super::pipeline::{json_response, SCOPE_CALENDAR};
use super::state::{AccessToken, RefreshToken, Shared, User};

/// Accounts one call may create (a larger population takes several calls).
pub const MAX_PER_CALL: u64 = 10_000;

#[derive(Debug, Deserialize)]
struct BulkUsers {
    /// Accounts are `{prefix}{n}@{domain}` for n in `start..start + count`.
    #[serde(default = "default_prefix")]
    prefix: String,
    #[serde(default = "default_domain")]
    domain: String,
    #[serde(default)]
    start: u64,
    count: u64,
    /// The registered OAuth client the grants are for.
    client_id: String,
}

fn default_prefix() -> String {
    "user".to_owned()
}

fn default_domain() -> String {
    "bulk.example.com".to_owned()
}

fn error(status: u16, message: &str) -> Response {
    json_response(status, &json!({"error": message}))
}

/// `POST /_emulator/users/bulk` `{prefix?, domain?, start?, count, client_id}` →
/// `{users: [{email, sub, calendar_id, access_token, refresh_token, expires_in}]}`.
/// An account that exists already keeps its calendar and gets a new grant.
#[handler]
pub fn create_users(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let bulk: BulkUsers = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(400, &format!("invalid JSON body: {e}")),
    };
    if bulk.count == 0 || bulk.count > MAX_PER_CALL {
        return error(400, &format!("`count` must be between 1 and {MAX_PER_CALL}"));
    }
    if bulk.domain.is_empty() || bulk.domain.contains('@') {
        return error(400, "`domain` must be a domain name");
    }
    let lifetime = shared.config.access_token_lifetime;
    let expires_at = Utc::now() + ChronoDuration::from_std(lifetime).unwrap_or(ChronoDuration::seconds(3599));
    let scopes = vec![SCOPE_CALENDAR.to_owned(), "openid".to_owned(), "email".to_owned()];
    let mut st = shared.state.lock();
    if !st.clients.contains_key(&bulk.client_id) {
        return error(400, "`client_id` is not a registered OAuth client");
    }
    // Google's `sub` identifies one account for good: never hand one out twice.
    let mut subs: HashSet<String> = st.users.values().map(|u| u.sub.clone()).collect();
    let mut users = Vec::with_capacity(usize::try_from(bulk.count).unwrap_or(0));
    for n in bulk.start..bulk.start.saturating_add(bulk.count) {
        let email = format!("{}{n}@{}", bulk.prefix, bulk.domain);
        let sub = match st.users.get(&email) {
            Some(user) => user.sub.clone(),
            None => {
                let sub = loop {
                    let sub: String = (0..21)
                        .map(|i| (b'0' + st.rng.gen_range(if i == 0 { 1 } else { 0 }..10u8)) as char)
                        .collect();
                    if subs.insert(sub.clone()) {
                        break sub;
                    }
                };
                st.users.insert(
                    email.clone(),
                    User {
                        email: email.clone(),
                        name: format!("{}{n}", bulk.prefix),
                        sub: sub.clone(),
                    },
                );
                st.create_calendar(&email, email.clone(), email.clone(), None, None, true);
                sub
            }
        };
        let refresh_token = st.new_token("1//");
        st.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshToken {
                email: email.clone(),
                client_id: bulk.client_id.clone(),
                scopes: scopes.clone(),
                revoked: false,
            },
        );
        let access_token = st.new_token("ya29.");
        st.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                email: email.clone(),
                client_id: bulk.client_id.clone(),
                scopes: scopes.clone(),
                expires_at,
                refresh_token: Some(refresh_token.clone()),
                revoked: false,
            },
        );
        st.record_grant(&email, &bulk.client_id, &scopes);
        users.push(json!({
            "email": email, "sub": sub, "calendar_id": email,
            "access_token": access_token, "refresh_token": refresh_token,
            "expires_in": lifetime.as_secs(),
        }));
    }
    json_response(200, &json!({ "users": Value::Array(users) }))
}
