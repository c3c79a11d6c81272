//! Fault injection: error rates per operation, lost responses, notification faults, latency.

use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Key of the "apply the write, then answer 503" fault.
pub const LOST_RESPONSE: &str = "lost_response";

/// Faults applied to push notifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationFaults {
    /// Probability that a notification is never sent.
    #[serde(default)]
    pub drop_rate: f64,
    /// Probability that a notification is sent twice (same message number).
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Delay in ms before a notification (or a batch) is sent: a number, or a uniform
    /// range `[lo, hi]`.
    #[serde(
        default,
        deserialize_with = "number_or_range",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay_ms: Option<[u64; 2]>,
    /// Batch window in ms: the changes to a calendar within the window that opens at the
    /// first one give each channel one `exists` notification, sent when it closes (plus
    /// the delay). 0 (the default) sends one notification per change.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub batch_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn number_or_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<[u64; 2]>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Delay {
        Fixed(u64),
        Range([u64; 2]),
    }
    Ok(Option::<Delay>::deserialize(d)?.map(|delay| match delay {
        Delay::Fixed(ms) => [ms, ms],
        Delay::Range(range) => range,
    }))
}

/// A 404 that goes away: `get`/`patch`/`update`/`delete` of an existing event answer 404
/// for the first `times` such requests per event, then normally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transient404 {
    /// 404 answers per event before the normal answer.
    pub times: u32,
    /// Operations affected (default: `events.get`, `events.patch`, `events.update`).
    #[serde(default = "transient_404_ops")]
    pub ops: Vec<String>,
}

fn transient_404_ops() -> Vec<String> {
    ["events.get", "events.patch", "events.update"]
        .map(str::to_owned)
        .to_vec()
}

/// What the token endpoint answers while the deployment's OAuth client is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokenClient {
    /// 401 `invalid_client` "Unauthorized".
    InvalidClient,
    /// 401 `deleted_client` "The OAuth client was deleted.".
    DeletedClient,
}

/// The whole fault plan, as `PUT /_emulator/faults` takes it.
///
/// ```json
/// {"ops": {"events.insert": {"503": 0.2, "lost_response": 0.1}, "*": {"429": 0.1}},
///  "notifications": {"drop_rate": 0.1, "duplicate_rate": 0.1, "delay_ms": [0, 200],
///                    "batch_ms": 500},
///  "latency_ms": [0, 5],
///  "transient_404": {"times": 2, "ops": ["events.get", "events.patch"]},
///  "deleted_event_writes": 403,
///  "token_endpoint": "invalid_client"}
/// ```
/// The short form of the issue (operation keys at the top level, next to the optional
/// `notifications` and `latency_ms`) is accepted too.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultPlan {
    /// Per-operation outcome rates: `op` (or `*`) → status code or `lost_response` → rate.
    pub ops: BTreeMap<String, BTreeMap<String, f64>>,
    /// Notification faults.
    pub notifications: NotificationFaults,
    /// Uniform added latency range in ms for every Google request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<[u64; 2]>,
    /// A transient 404 on existing events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transient_404: Option<Transient404>,
    /// Status of an update or patch to a deleted event: 410 (`deleted`, the default) or
    /// 403 (`forbidden`, as answered for events deleted in the Google UI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_event_writes: Option<u16>,
    /// The token endpoint answers this for every grant (refresh included) while set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<BrokenClient>,
}

/// What an injected fault does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status without applying anything.
    Status(u16),
    /// Apply the request, then answer 503.
    LostResponse,
}

impl Fault {
    /// The key used in stats (`"503"`, `"lost_response"`).
    pub fn key(&self) -> String {
        match self {
            Fault::Status(code) => code.to_string(),
            Fault::LostResponse => LOST_RESPONSE.to_owned(),
        }
    }
}

/// Why a fault plan was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FaultPlanError {
    /// The JSON did not have the expected shape.
    #[error("invalid fault plan: {0}")]
    Shape(#[from] serde_json::Error),
    /// A key is neither a status code nor `lost_response`.
    #[error("unknown fault `{0}` (use an HTTP status such as \"503\" or \"lost_response\")")]
    UnknownFault(String),
    /// A rate outside 0..=1 or rates of one op summing above 1.
    #[error("rates of `{0}` must each be in 0..=1 and sum to at most 1")]
    BadRate(String),
    /// A range whose lower bound exceeds the upper.
    #[error("range {0:?} is reversed")]
    BadRange([u64; 2]),
    /// `deleted_event_writes` other than 403 or 410.
    #[error("`deleted_event_writes` must be 403 or 410, not {0}")]
    BadDeletedStatus(u16),
}

impl FaultPlan {
    /// Parses and validates a plan from JSON (full or short form).
    pub fn from_json(value: Value) -> Result<Self, FaultPlanError> {
        let Value::Object(mut map) = value else {
            return Err(FaultPlanError::Shape(serde::de::Error::custom(
                "expected a JSON object",
            )));
        };
        let notifications = match map.remove("notifications") {
            Some(v) => serde_json::from_value(v)?,
            None => NotificationFaults::default(),
        };
        let latency_ms: Option<[u64; 2]> = match map.remove("latency_ms") {
            Some(v) => serde_json::from_value(v)?,
            None => None,
        };
        let transient_404: Option<Transient404> = match map.remove("transient_404") {
            Some(v) => serde_json::from_value(v)?,
            None => None,
        };
        let deleted_event_writes: Option<u16> = match map.remove("deleted_event_writes") {
            Some(v) => serde_json::from_value(v)?,
            None => None,
        };
        if let Some(code) = deleted_event_writes.filter(|c| !matches!(c, 403 | 410)) {
            return Err(FaultPlanError::BadDeletedStatus(code));
        }
        let token_endpoint: Option<BrokenClient> = match map.remove("token_endpoint") {
            Some(v) => serde_json::from_value(v)?,
            None => None,
        };
        let ops: BTreeMap<String, BTreeMap<String, f64>> = match map.remove("ops") {
            Some(v) => {
                if let Some(k) = map.keys().next() {
                    return Err(FaultPlanError::Shape(serde::de::Error::custom(format!(
                        "unexpected key `{k}` next to `ops`"
                    ))));
                }
                serde_json::from_value(v)?
            }
            None => serde_json::from_value(Value::Object(map))?,
        };
        for (op, rates) in &ops {
            let mut sum = 0.0;
            for (key, rate) in rates {
                if key != LOST_RESPONSE && !matches!(key.parse::<u16>(), Ok(100..=599)) {
                    return Err(FaultPlanError::UnknownFault(key.clone()));
                }
                if !(0.0..=1.0).contains(rate) {
                    return Err(FaultPlanError::BadRate(op.clone()));
                }
                sum += rate;
            }
            if sum > 1.0 + 1e-9 {
                return Err(FaultPlanError::BadRate(op.clone()));
            }
        }
        let n = &notifications;
        if !(0.0..=1.0).contains(&n.drop_rate) || !(0.0..=1.0).contains(&n.duplicate_rate) {
            return Err(FaultPlanError::BadRate("notifications".to_owned()));
        }
        for range in [latency_ms, n.delay_ms].into_iter().flatten() {
            if range[0] > range[1] {
                return Err(FaultPlanError::BadRange(range));
            }
        }
        Ok(Self {
            ops,
            notifications,
            latency_ms,
            transient_404,
            deleted_event_writes,
            token_endpoint,
        })
    }

    /// Draws the fault (if any) for one request of `op`. Rates of the op override `*`
    /// rates for the same key.
    pub fn draw(&self, op: &str, rng: &mut StdRng) -> Option<Fault> {
        let mut rates: BTreeMap<&str, f64> = BTreeMap::new();
        for source in [self.ops.get("*"), self.ops.get(op)].into_iter().flatten() {
            for (k, v) in source {
                rates.insert(k.as_str(), *v);
            }
        }
        if rates.is_empty() {
            return None;
        }
        let roll: f64 = rng.gen();
        let mut acc = 0.0;
        for (key, rate) in rates {
            acc += rate;
            if roll < acc {
                return Some(match key.parse::<u16>() {
                    Ok(code) => Fault::Status(code),
                    Err(_) => Fault::LostResponse,
                });
            }
        }
        None
    }

    /// Draws the fault for an operation named explicitly in the plan (the `*` rates do
    /// not apply; used for the OAuth endpoints).
    pub fn draw_exact(&self, op: &str, rng: &mut StdRng) -> Option<Fault> {
        let rates = self.ops.get(op)?;
        let plan = FaultPlan {
            ops: BTreeMap::from([(op.to_owned(), rates.clone())]),
            ..FaultPlan::default()
        };
        plan.draw(op, rng)
    }

    /// Draws the added latency for one request.
    pub fn draw_latency(&self, rng: &mut StdRng) -> Option<Duration> {
        draw_range(self.latency_ms, rng)
    }
}

/// A uniform draw from an inclusive millisecond range.
pub fn draw_range(range: Option<[u64; 2]>, rng: &mut StdRng) -> Option<Duration> {
    let [lo, hi] = range?;
    let ms = if hi > lo { rng.gen_range(lo..=hi) } else { lo };
    (ms > 0).then(|| Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn short_and_full_forms_parse_to_the_same_plan() {
        let full = FaultPlan::from_json(json!({"ops": {"events.insert": {"503": 0.5}}})).unwrap();
        let short = FaultPlan::from_json(json!({"events.insert": {"503": 0.5}})).unwrap();
        assert_eq!(full, short);
    }

    #[test]
    fn unknown_fault_keys_and_bad_rates_are_rejected() {
        assert!(FaultPlan::from_json(json!({"*": {"boom": 0.1}})).is_err());
        assert!(FaultPlan::from_json(json!({"*": {"503": 0.7, "429": 0.7}})).is_err());
        assert!(FaultPlan::from_json(json!({"latency_ms": [5, 1]})).is_err());
    }

    #[test]
    fn a_rate_of_one_always_fires_and_op_rates_override_the_wildcard() {
        let plan =
            FaultPlan::from_json(json!({"*": {"429": 1.0}, "events.get": {"429": 0.0, "lost_response": 1.0}})).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(plan.draw("events.list", &mut rng), Some(Fault::Status(429)));
        assert_eq!(plan.draw("events.get", &mut rng), Some(Fault::LostResponse));
    }
}
