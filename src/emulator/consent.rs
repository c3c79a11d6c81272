//! The emulated consent screen: what the user decides (approve or deny, which of the
//! requested scopes stay ticked, which Google account is picked), the control routes
//! that set it, and what one authorization grants.
//!
//! Google's granular consent lets a user untick scopes, never grant more than requested;
//! `include_granted_scopes=true` adds what the same account already granted the same
//! client and still holds. The account's standing grant per client is kept in
//! [`State::grants`](super::state::State) and forgotten on revocation.

use super::pipeline::json_response;
use super::state::Shared;
use poem::web::Data;
use poem::{handler, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Whether the (emulated) consent screen approves or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentDecision {
    /// Redirect with a code.
    #[default]
    Approve,
    /// Redirect with `error=access_denied`.
    Deny,
}

/// What the consent screen answers to every authorization until changed or reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConsentSetting {
    /// Approve or deny.
    pub decision: ConsentDecision,
    /// The scopes left ticked; `None` grants every requested scope.
    pub scopes: Option<Vec<String>>,
    /// The account the user picks; `None` follows `login_hint`.
    pub account: Option<String>,
}

impl ConsentSetting {
    /// Parses and checks the body of `PUT /_emulator/consent`; the error is the message
    /// of a 400.
    pub fn from_json(body: &Value) -> Result<Self, String> {
        let Some(fields) = body.as_object() else {
            return Err("the body must be a JSON object like {\"decision\":\"approve\"}".to_owned());
        };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !matches!(k.as_str(), "decision" | "scopes" | "account"))
        {
            return Err(format!(
                "unknown field `{unknown}`; expected `decision`, `scopes` or `account`"
            ));
        }
        let decision = match fields.get("decision") {
            Some(Value::String(d)) if d == "approve" => ConsentDecision::Approve,
            Some(Value::String(d)) if d == "deny" => ConsentDecision::Deny,
            Some(_) => return Err("`decision` must be \"approve\" or \"deny\"".to_owned()),
            None => return Err("`decision` is required (\"approve\" or \"deny\")".to_owned()),
        };
        let scopes = match fields.get("scopes") {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_scopes(value)?),
        };
        let account = match fields.get("account") {
            None | Some(Value::Null) => None,
            Some(Value::String(a)) if is_email(a) => Some(a.clone()),
            Some(_) => return Err("`account` must be an email address".to_owned()),
        };
        if decision == ConsentDecision::Deny && (scopes.is_some() || account.is_some()) {
            return Err("`scopes` and `account` apply to \"approve\" only".to_owned());
        }
        Ok(Self {
            decision,
            scopes,
            account,
        })
    }

    /// The requested scopes this consent grants, in the order requested.
    pub fn grant(&self, requested: &[String]) -> Vec<String> {
        match &self.scopes {
            None => requested.to_vec(),
            Some(ticked) => requested
                .iter()
                .filter(|r| ticked.iter().any(|t| same_scope(t, r)))
                .cloned()
                .collect(),
        }
    }
}

fn parse_scopes(value: &Value) -> Result<Vec<String>, String> {
    let message = "`scopes` must be a non-empty array of scope strings";
    let items = value.as_array().ok_or(message)?;
    let scopes: Vec<String> = items
        .iter()
        .map(|s| match s.as_str() {
            Some(s) if !s.is_empty() && !s.contains(char::is_whitespace) => Ok(s.to_owned()),
            _ => Err(message),
        })
        .collect::<Result<_, _>>()?;
    if scopes.is_empty() {
        return Err(format!(
            "{message} (to refuse everything use {{\"decision\":\"deny\"}})"
        ));
    }
    Ok(scopes)
}

/// A plausible email address: one `@`, something on both sides, no whitespace.
pub fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Whether two scope strings name the same permission (`email` and `profile` have long
/// aliases).
pub fn same_scope(a: &str, b: &str) -> bool {
    fn canonical(s: &str) -> &str {
        match s {
            "https://www.googleapis.com/auth/userinfo.email" => "email",
            "https://www.googleapis.com/auth/userinfo.profile" => "profile",
            other => other,
        }
    }
    canonical(a) == canonical(b)
}

/// `first`, then every scope of `then` not already in it.
pub fn union(first: &[String], then: &[String]) -> Vec<String> {
    let mut all = first.to_vec();
    for scope in then {
        if !all.iter().any(|s| same_scope(s, scope)) {
            all.push(scope.clone());
        }
    }
    all
}

/// `PUT /_emulator/consent` `{decision, scopes?, account?}`: what the consent screen
/// answers from now on; echoes the setting.
#[handler]
pub fn set_consent(body: Vec<u8>, Data(shared): Data<&Arc<Shared>>) -> Response {
    let setting = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(ConsentSetting::default())
    } else {
        serde_json::from_slice::<Value>(&body)
            .map_err(|e| format!("invalid JSON body: {e}"))
            .and_then(|v| ConsentSetting::from_json(&v))
    };
    match setting {
        Ok(setting) => {
            let echo = serde_json::to_value(&setting).unwrap_or(Value::Null);
            shared.state.lock().consent = setting;
            json_response(200, &echo)
        }
        Err(message) => json_response(400, &json!({"error": message})),
    }
}

/// `GET /_emulator/consent`: the current setting.
#[handler]
pub fn get_consent(Data(shared): Data<&Arc<Shared>>) -> Response {
    let st = shared.state.lock();
    json_response(200, &serde_json::to_value(&st.consent).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_consent_grants_the_requested_scopes_left_ticked_and_never_more() {
        let setting = ConsentSetting::from_json(&json!({"decision": "approve",
            "scopes": ["openid", "https://www.googleapis.com/auth/userinfo.email", "extra"]}))
        .unwrap();
        let requested = strings(&["openid", "email", "https://www.googleapis.com/auth/calendar"]);
        assert_eq!(setting.grant(&requested), strings(&["openid", "email"]));
        assert_eq!(ConsentSetting::default().grant(&requested), requested);
    }

    #[test]
    fn union_keeps_the_first_order_and_skips_aliases() {
        let merged = union(
            &strings(&["openid", "email"]),
            &strings(&["https://www.googleapis.com/auth/userinfo.email", "calendar", "openid"]),
        );
        assert_eq!(merged, strings(&["openid", "email", "calendar"]));
    }

    #[test]
    fn bad_consent_bodies_are_refused_with_a_message_naming_the_field() {
        let err = |v: Value| ConsentSetting::from_json(&v).unwrap_err();
        assert!(err(json!({"decision": "approve", "scopes": "openid"})).contains("`scopes`"));
        assert!(err(json!({"decision": "approve", "scopes": [1]})).contains("`scopes`"));
        assert!(err(json!({"decision": "approve", "scopes": []})).contains("`scopes`"));
        assert!(err(json!({"decision": "approve", "scopes": ["a b"]})).contains("`scopes`"));
        assert!(err(json!({"decision": "approve", "account": "nobody"})).contains("`account`"));
        assert!(err(json!({"decision": "approve", "account": "a@b@c"})).contains("`account`"));
        assert!(err(json!({"decision": "maybe"})).contains("`decision`"));
        assert!(err(json!({"scopes": ["openid"]})).contains("`decision`"));
        assert!(err(json!({"decision": "approve", "scope": ["openid"]})).contains("`scope`"));
        assert!(err(json!({"decision": "deny", "account": "a@b.c"})).contains("approve"));
        assert!(err(json!(["approve"])).contains("object"));
    }
}
