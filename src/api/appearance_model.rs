//! How a slot appears in Google Calendar, as the API shows and reads it: `visibility`,
//! `transparency`, `color_id`, `reminders`. The rules are the domain's
//! (`domain::appearance`); the types here are what the spec shows.

use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON};
use poem_openapi::{Enum, Object};
use serde_json::Value;

use crate::domain::{
    appearance::MAX_REMINDER_MINUTES, Appearance, AppearanceFields, ReminderFields, ReminderMethod, Reminders,
    Transparency, Visibility,
};

/// Who may see the slot's details in Google Calendar (Google's `visibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SlotVisibility {
    /// The calendar's own setting.
    Default,
    /// Anyone who can see the calendar sees the details.
    Public,
    /// Only the calendar's owners and writers see the details.
    Private,
    /// As `private` (Google keeps it for compatibility).
    Confidential,
}

impl From<Visibility> for SlotVisibility {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Default => Self::Default,
            Visibility::Public => Self::Public,
            Visibility::Private => Self::Private,
            Visibility::Confidential => Self::Confidential,
        }
    }
}

/// Whether the slot blocks time (Google's `transparency`: `opaque` | `transparent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SlotTransparency {
    /// Blocks time (Google: `opaque`).
    Busy,
    /// Shows as available (Google: `transparent`).
    Free,
}

impl From<Transparency> for SlotTransparency {
    fn from(t: Transparency) -> Self {
        match t {
            Transparency::Busy => Self::Busy,
            Transparency::Free => Self::Free,
        }
    }
}

/// Minutes before the start, 0–40320 (four weeks, Google's limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ReminderMinutes(pub u32);

super::scalar_type!(ReminderMinutes, "integer_reminder_minutes", {
    let mut schema = MetaSchema::new_with_format("integer", "int32");
    schema.minimum = Some(0.0);
    schema.maximum = Some(MAX_REMINDER_MINUTES as f64);
    schema
});

impl ParseFromJSON for ReminderMinutes {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.as_ref().and_then(Value::as_u64) {
            Some(n) if n <= MAX_REMINDER_MINUTES as u64 => Ok(Self(n as u32)),
            _ => Err(ParseError::custom("must be 0 to 40320")),
        }
    }
}

impl ToJSON for ReminderMinutes {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0))
    }
}

/// The slot's reminders: the calendar's default ones (`{"use_default": true}`, the
/// default), or exactly the ones listed (`use_default: false`; none when both lists are
/// empty). At most 5 in all, each at most once per list.
#[derive(Debug, Clone, PartialEq, Eq, Object, serde::Serialize, serde::Deserialize)]
#[oai(skip_serializing_if_is_none, deny_unknown_fields)]
pub struct SlotReminders {
    /// `true`: the calendar's default reminders (then no `minutes` nor `email_minutes`).
    /// `false`: exactly the reminders listed.
    pub use_default: bool,
    /// Popup reminders: minutes before the start, 0–40320.
    #[oai(validator(max_items = 5, unique_items))]
    pub minutes: Option<Vec<ReminderMinutes>>,
    /// Email reminders: minutes before the start, 0–40320 (Google sends them to the
    /// calendar's owner; set in Google or here).
    #[oai(validator(max_items = 5, unique_items))]
    pub email_minutes: Option<Vec<ReminderMinutes>>,
}

impl From<&Reminders> for SlotReminders {
    fn from(r: &Reminders) -> Self {
        let of = |method| r.minutes(method).into_iter().map(ReminderMinutes).collect::<Vec<_>>();
        match r {
            Reminders::Default => Self {
                use_default: true,
                minutes: None,
                email_minutes: None,
            },
            Reminders::Custom(_) => {
                let email = of(ReminderMethod::Email);
                Self {
                    use_default: false,
                    minutes: Some(of(ReminderMethod::Popup)),
                    email_minutes: (!email.is_empty()).then_some(email),
                }
            }
        }
    }
}

/// `reminders` as the server reads it (wider than the schema, so that every broken rule
/// is reported by the domain on its own field, e.g. `reminders.minutes`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderInput {
    pub use_default: bool,
    pub minutes: Option<Vec<i64>>,
    pub email_minutes: Option<Vec<i64>>,
}

impl From<ReminderInput> for ReminderFields {
    fn from(r: ReminderInput) -> Self {
        ReminderFields {
            use_default: r.use_default,
            minutes: r.minutes,
            email_minutes: r.email_minutes,
        }
    }
}

/// The four fields of a slot body, as the domain validates them.
pub fn fields(
    visibility: Option<String>,
    transparency: Option<String>,
    color_id: Option<String>,
    reminders: Option<ReminderInput>,
) -> AppearanceFields {
    AppearanceFields {
        visibility,
        transparency,
        color_id,
        reminders: reminders.map(Into::into),
    }
}

/// The four fields of a slot as the API shows them.
pub struct Shown {
    pub visibility: SlotVisibility,
    pub transparency: SlotTransparency,
    pub color_id: Option<String>,
    pub reminders: SlotReminders,
}

impl From<&Appearance> for Shown {
    fn from(a: &Appearance) -> Self {
        let Appearance {
            visibility,
            transparency,
            color_id,
            reminders,
        } = a;
        Shown {
            visibility: (*visibility).into(),
            transparency: (*transparency).into(),
            color_id: color_id.map(|c| c.to_string()),
            reminders: reminders.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::Type;

    #[test]
    fn reminder_minutes_are_an_integer_from_0_to_40320() {
        let poem_openapi::registry::MetaSchemaRef::Inline(schema) = ReminderMinutes::schema_ref() else {
            panic!("inline schema expected");
        };
        assert_eq!(
            (schema.ty, schema.minimum, schema.maximum),
            ("integer", Some(0.0), Some(40320.0))
        );
        assert!(ReminderMinutes::parse_from_json(Some(Value::from(40_321))).is_err());
        assert!(ReminderMinutes::parse_from_json(Some(Value::from(-1))).is_err());
        assert_eq!(
            ReminderMinutes::parse_from_json(Some(Value::from(10))).unwrap(),
            ReminderMinutes(10)
        );
    }

    #[test]
    fn reminders_show_the_default_alone_and_custom_ones_by_method() {
        let shown = SlotReminders::from(&Reminders::Default);
        assert_eq!(serde_json::to_value(&shown).unwrap()["use_default"], true);
        assert_eq!(shown.to_json().unwrap(), serde_json::json!({"use_default": true}));
        let custom = Appearance::validate(AppearanceFields {
            reminders: Some(ReminderFields {
                use_default: false,
                minutes: Some(vec![60, 10]),
                email_minutes: None,
            }),
            ..Default::default()
        })
        .unwrap()
        .reminders;
        assert_eq!(
            SlotReminders::from(&custom).to_json().unwrap(),
            serde_json::json!({"use_default": false, "minutes": [10, 60]})
        );
    }
}
