//! `visibility`, `transparency`, `colorId` and `reminders`, validated as Google does; see
//! <https://developers.google.com/calendar/api/v3/reference/events>. The fields travel in
//! [`Event::extra`] and are stored and returned verbatim once valid.

use super::errors::ApiError;
use super::model::Event;
use serde_json::Value;

/// `visibility` values.
const VISIBILITIES: [&str; 4] = ["default", "public", "private", "confidential"];
/// `transparency` values.
const TRANSPARENCIES: [&str; 2] = ["opaque", "transparent"];
/// `reminders.overrides[].method` values.
const REMINDER_METHODS: [&str; 2] = ["email", "popup"];
/// At most this many reminder overrides.
pub const MAX_REMINDER_OVERRIDES: usize = 5;
/// Reminder minutes range (four weeks).
pub const MAX_REMINDER_MINUTES: i64 = 40_320;

/// Checks the four fields, when present (400 `invalid` or `required` otherwise).
pub fn validate_fields(event: &Event) -> Result<(), ApiError> {
    let field = |name: &str| event.extra.get(name).filter(|v| !v.is_null());
    one_of(field("visibility"), "visibility", &VISIBILITIES)?;
    one_of(field("transparency"), "transparency", &TRANSPARENCIES)?;
    if let Some(color) = field("colorId") {
        let valid = color
            .as_str()
            .and_then(|c| c.parse::<u8>().ok())
            .is_some_and(|n| (1..=11).contains(&n));
        if !valid {
            return Err(ApiError::invalid(
                "Invalid value for: colorId. Event colors are \"1\" to \"11\".",
            ));
        }
    }
    if let Some(reminders) = field("reminders") {
        validate_reminders(reminders)?;
    }
    Ok(())
}

fn one_of(value: Option<&Value>, name: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match value {
        Some(v) if !v.as_str().is_some_and(|s| allowed.contains(&s)) => {
            Err(ApiError::invalid(&format!("Invalid value for: {name}")))
        }
        _ => Ok(()),
    }
}

fn validate_reminders(reminders: &Value) -> Result<(), ApiError> {
    let Some(obj) = reminders.as_object() else {
        return Err(ApiError::invalid("Invalid value for: reminders"));
    };
    let use_default = obj.get("useDefault").and_then(Value::as_bool).unwrap_or(false);
    let overrides = match obj.get("overrides") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(ApiError::invalid("Invalid value for: reminders.overrides")),
    };
    if use_default && !overrides.is_empty() {
        return Err(ApiError::invalid(
            "Cannot specify both default reminders and overrides at the same time.",
        ));
    }
    if overrides.len() > MAX_REMINDER_OVERRIDES {
        return Err(ApiError::invalid("The maximum number of override reminders is 5."));
    }
    for o in &overrides {
        let method = o.get("method").and_then(Value::as_str);
        let Some(method) = method else {
            return Err(ApiError::required("Missing reminder method."));
        };
        if !REMINDER_METHODS.contains(&method) {
            return Err(ApiError::invalid("Invalid reminder method."));
        }
        let Some(minutes) = o.get("minutes").and_then(Value::as_i64) else {
            return Err(ApiError::required("Missing reminder minutes."));
        };
        if !(0..=MAX_REMINDER_MINUTES).contains(&minutes) {
            return Err(ApiError::invalid("Invalid reminder minutes: the range is 0 to 40320."));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<(), ApiError> {
        validate_fields(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn googles_values_pass_and_others_are_400() {
        assert!(check(
            json!({"visibility": "private", "transparency": "transparent", "colorId": "11",
            "reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 10}]}})
        )
        .is_ok());
        assert!(check(json!({"colorId": "12"})).is_err());
        assert!(check(json!({"visibility": "secret"})).is_err());
        assert!(check(json!({"transparency": "free"})).is_err());
        assert!(
            check(json!({"reminders": {"useDefault": true, "overrides": [{"method": "popup", "minutes": 1}]}}))
                .is_err()
        );
        assert!(check(json!({"reminders": {"overrides": [{"method": "popup", "minutes": 40321}]}})).is_err());
        let six: Vec<Value> = (0..6).map(|m| json!({"method": "email", "minutes": m})).collect();
        assert!(check(json!({"reminders": {"useDefault": false, "overrides": six}})).is_err());
    }
}
