//! How a slot appears in Google Calendar: who may see its details (`visibility`), whether
//! it blocks time (`transparency`), its colour (`color_id`) and its reminders. Each has a
//! default that is what Google assumes when the event says nothing, and each default is
//! left out of the fingerprint, so slots that use none of them keep the fingerprint they
//! had before these fields existed.

use std::fmt;
use std::str::FromStr;

use super::slot::ValidationError;

/// Most reminders an event may have (Google: "The maximum number of override reminders
/// is 5").
pub const MAX_REMINDERS: usize = 5;
/// Longest reminder lead time in minutes (Google: four weeks).
pub const MAX_REMINDER_MINUTES: i64 = 40_320;

/// Who may see the slot's details (Google's `visibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Visibility {
    /// The calendar's own setting.
    #[default]
    Default,
    /// Anyone who can see the calendar sees the details.
    Public,
    /// Only the calendar's owners and writers see the details.
    Private,
    /// Private, as Google treats it (kept for compatibility).
    Confidential,
}

impl Visibility {
    /// Every value, in the order the API lists them.
    pub const ALL: [Visibility; 4] = [Self::Default, Self::Public, Self::Private, Self::Confidential];

    /// The spelling of the API and of Google (they agree).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Public => "public",
            Self::Private => "private",
            Self::Confidential => "confidential",
        }
    }
}

impl FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not one of `default`, `public`, `private`, `confidential`"))
    }
}

/// Whether the slot blocks time (Google's `transparency`: `opaque` is busy, `transparent`
/// is free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transparency {
    /// Blocks time (Google: `opaque`).
    #[default]
    Busy,
    /// Does not block time (Google: `transparent`).
    Free,
}

impl Transparency {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Free => "free",
        }
    }

    /// Google's spelling.
    pub fn google(self) -> &'static str {
        match self {
            Self::Busy => "opaque",
            Self::Free => "transparent",
        }
    }

    /// From Google's spelling; anything else is Google's default, `opaque`.
    pub fn from_google(value: Option<&str>) -> Self {
        match value {
            Some("transparent") => Self::Free,
            _ => Self::Busy,
        }
    }
}

impl FromStr for Transparency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "busy" => Ok(Self::Busy),
            "free" => Ok(Self::Free),
            other => Err(format!("`{other}` is not one of `busy`, `free`")),
        }
    }
}

/// One of Google's event colours, `"1"` to `"11"` (`colors.get` → `event`). A slot
/// without one shows in its calendar's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ColorId(u8);

impl ColorId {
    /// The colour's number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl FromStr for ColorId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // Exactly Google's spellings: no sign, no leading zero, no spaces.
        match s.parse::<u8>() {
            Ok(n @ 1..=11) if s == n.to_string() => Ok(Self(n)),
            _ => Err(format!("`{s}` is not one of Google's event colours \"1\" to \"11\"")),
        }
    }
}

impl fmt::Display for ColorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a reminder reaches the user. Popups sort before emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReminderMethod {
    /// A notification in the calendar app (what the API's `minutes` are).
    Popup,
    /// An email (the API's `email_minutes`; kept as it came from Google).
    Email,
}

impl ReminderMethod {
    /// Google's spelling (`reminders.overrides[].method`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Popup => "popup",
            Self::Email => "email",
        }
    }

    /// From Google's spelling; other methods (the retired `sms`) are not kept.
    pub fn from_google(value: &str) -> Option<Self> {
        match value {
            "popup" => Some(Self::Popup),
            "email" => Some(Self::Email),
            _ => None,
        }
    }
}

/// One reminder: how, and how many minutes before the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reminder {
    pub method: ReminderMethod,
    pub minutes: u32,
}

/// A slot's reminders.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Reminders {
    /// The calendar's default reminders (Google: `useDefault: true`).
    #[default]
    Default,
    /// Exactly these (none at all when empty), sorted and without repeats, at most
    /// [`MAX_REMINDERS`], each at most [`MAX_REMINDER_MINUTES`].
    Custom(Vec<Reminder>),
}

impl Reminders {
    /// The minutes of the reminders sent by `method`, in order.
    pub fn minutes(&self, method: ReminderMethod) -> Vec<u32> {
        match self {
            Self::Default => Vec::new(),
            Self::Custom(list) => list.iter().filter(|r| r.method == method).map(|r| r.minutes).collect(),
        }
    }

    /// The canonical text of custom reminders (`popup:10,email:60`), for the fingerprint
    /// and for storage; `None` for the default.
    pub fn canonical(&self) -> Option<String> {
        match self {
            Self::Default => None,
            Self::Custom(list) => Some(
                list.iter()
                    .map(|r| format!("{}:{}", r.method.as_str(), r.minutes))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        }
    }

    /// Reads [`Reminders::canonical`] back (`None` stands for the default). Parts that
    /// cannot be read are skipped.
    pub fn from_canonical(text: Option<&str>) -> Self {
        let Some(text) = text else {
            return Self::Default;
        };
        let mut list: Vec<Reminder> = text
            .split(',')
            .filter_map(|part| {
                let (method, minutes) = part.split_once(':')?;
                Some(Reminder {
                    method: ReminderMethod::from_google(method)?,
                    minutes: minutes.parse().ok()?,
                })
            })
            .collect();
        list.sort();
        list.dedup();
        Self::Custom(list)
    }
}

/// The four fields together, as a slot and its occurrences carry them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Appearance {
    pub visibility: Visibility,
    pub transparency: Transparency,
    pub color_id: Option<ColorId>,
    pub reminders: Reminders,
}

/// Reminders as a client sends them, before validation: the calendar's default, or
/// popup reminders (`minutes`) and email reminders (`email_minutes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderFields {
    pub use_default: bool,
    pub minutes: Option<Vec<i64>>,
    pub email_minutes: Option<Vec<i64>>,
}

/// The four fields as a client sends them, before validation (`None`: the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppearanceFields {
    pub visibility: Option<String>,
    pub transparency: Option<String>,
    pub color_id: Option<String>,
    pub reminders: Option<ReminderFields>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

impl Appearance {
    /// Checks the fields; the first broken rule is reported on its field
    /// (`visibility`, `transparency`, `color_id`, `reminders.minutes`,
    /// `reminders.email_minutes`). Reminders come out sorted.
    pub fn validate(fields: AppearanceFields) -> Result<Self, ValidationError> {
        let AppearanceFields {
            visibility,
            transparency,
            color_id,
            reminders,
        } = fields;
        let visibility = match visibility {
            None => Visibility::Default,
            Some(v) => v.parse().map_err(|e| invalid("visibility", e))?,
        };
        let transparency = match transparency {
            None => Transparency::Busy,
            Some(t) => t.parse().map_err(|e| invalid("transparency", e))?,
        };
        let color_id = match color_id {
            None => None,
            Some(c) => Some(c.parse::<ColorId>().map_err(|e: String| {
                invalid(
                    "color_id",
                    format!("{e}; omit it or send null for the calendar's colour"),
                )
            })?),
        };
        let reminders = match reminders {
            None => Reminders::Default,
            Some(r) => validate_reminders(r)?,
        };
        Ok(Self {
            visibility,
            transparency,
            color_id,
            reminders,
        })
    }
}

fn validate_reminders(fields: ReminderFields) -> Result<Reminders, ValidationError> {
    let ReminderFields {
        use_default,
        minutes,
        email_minutes,
    } = fields;
    let lists = [
        ("reminders.minutes", ReminderMethod::Popup, minutes.unwrap_or_default()),
        (
            "reminders.email_minutes",
            ReminderMethod::Email,
            email_minutes.unwrap_or_default(),
        ),
    ];
    if use_default {
        for &(field, _, ref values) in &lists {
            if !values.is_empty() {
                return Err(invalid(
                    field,
                    "must be omitted (or empty) when `use_default` is true: the calendar's default reminders apply",
                ));
            }
        }
        return Ok(Reminders::Default);
    }
    let mut list = Vec::new();
    for (field, method, values) in lists {
        for (i, &m) in values.iter().enumerate() {
            if !(0..=MAX_REMINDER_MINUTES).contains(&m) {
                return Err(invalid(
                    field,
                    format!("{m} is out of range: each reminder is 0 to {MAX_REMINDER_MINUTES} minutes (four weeks) before the start"),
                ));
            }
            if values[..i].contains(&m) {
                return Err(invalid(
                    field,
                    format!("{m} is given twice; each reminder at most once"),
                ));
            }
            list.push(Reminder {
                method,
                minutes: m as u32,
            });
        }
        if list.len() > MAX_REMINDERS {
            return Err(invalid(
                field,
                format!("at most {MAX_REMINDERS} reminders in all (`minutes` and `email_minutes` together), as in Google Calendar"),
            ));
        }
    }
    list.sort();
    Ok(Reminders::Custom(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for v in Visibility::ALL {
            assert_eq!(v.as_str().parse::<Visibility>(), Ok(v));
        }
        for t in [Transparency::Busy, Transparency::Free] {
            assert_eq!(t.as_str().parse::<Transparency>(), Ok(t));
            assert_eq!(Transparency::from_google(Some(t.google())), t);
        }
        assert_eq!(Transparency::from_google(None), Transparency::Busy);
        assert!("secret".parse::<Visibility>().is_err());
        assert!("opaque".parse::<Transparency>().is_err());
    }

    fn check(fields: AppearanceFields) -> Result<Appearance, &'static str> {
        Appearance::validate(fields).map_err(|e| e.field)
    }

    fn reminders(use_default: bool, minutes: &[i64], email: &[i64]) -> AppearanceFields {
        AppearanceFields {
            reminders: Some(ReminderFields {
                use_default,
                minutes: Some(minutes.to_vec()),
                email_minutes: Some(email.to_vec()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_given_is_every_default() {
        assert_eq!(check(AppearanceFields::default()), Ok(Appearance::default()));
        assert_eq!(check(reminders(true, &[], &[])), Ok(Appearance::default()));
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let text = |s: &str| Some(s.to_owned());
        let cases: Vec<(AppearanceFields, &str)> = vec![
            (
                AppearanceFields {
                    visibility: text("secret"),
                    ..Default::default()
                },
                "visibility",
            ),
            (
                AppearanceFields {
                    transparency: text("opaque"),
                    ..Default::default()
                },
                "transparency",
            ),
            (
                AppearanceFields {
                    color_id: text("12"),
                    ..Default::default()
                },
                "color_id",
            ),
            (reminders(false, &[-1], &[]), "reminders.minutes"),
            (reminders(false, &[40_321], &[]), "reminders.minutes"),
            (reminders(false, &[10, 10], &[]), "reminders.minutes"),
            (reminders(false, &[1, 2, 3, 4, 5, 6], &[]), "reminders.minutes"),
            (reminders(false, &[1, 2, 3], &[4, 5, 6]), "reminders.email_minutes"),
            (reminders(false, &[], &[40_321]), "reminders.email_minutes"),
            (reminders(true, &[10], &[]), "reminders.minutes"),
            (reminders(true, &[], &[10]), "reminders.email_minutes"),
        ];
        for (fields, field) in cases {
            assert_eq!(check(fields.clone()).map(|_| ()), Err(field), "{fields:?}");
        }
    }

    #[test]
    fn valid_values_are_kept_and_reminders_sorted() {
        let got = check(AppearanceFields {
            visibility: Some("private".into()),
            transparency: Some("free".into()),
            color_id: Some("11".into()),
            ..reminders(false, &[60, 0, 40_320], &[1440])
        })
        .unwrap();
        assert_eq!(got.visibility, Visibility::Private);
        assert_eq!(got.transparency, Transparency::Free);
        assert_eq!(got.color_id.map(ColorId::get), Some(11));
        assert_eq!(got.reminders.minutes(ReminderMethod::Popup), vec![0, 60, 40_320]);
        assert_eq!(got.reminders.minutes(ReminderMethod::Email), vec![1440]);
        // `use_default: false` without any minutes: no reminders at all.
        assert_eq!(
            check(reminders(false, &[], &[])).unwrap().reminders,
            Reminders::Custom(vec![])
        );
    }

    #[test]
    fn colour_ids_are_exactly_googles_eleven() {
        for n in 1..=11u8 {
            assert_eq!(n.to_string().parse::<ColorId>().map(ColorId::get), Ok(n));
        }
        for bad in ["0", "12", "01", " 1", "+1", "", "a"] {
            assert!(bad.parse::<ColorId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn custom_reminders_round_trip_through_their_canonical_text() {
        let r = Reminders::Custom(vec![
            Reminder {
                method: ReminderMethod::Popup,
                minutes: 10,
            },
            Reminder {
                method: ReminderMethod::Email,
                minutes: 60,
            },
        ]);
        assert_eq!(r.canonical().as_deref(), Some("popup:10,email:60"));
        assert_eq!(Reminders::from_canonical(r.canonical().as_deref()), r);
        assert_eq!(Reminders::from_canonical(None), Reminders::Default);
        // No reminders at all is not the default.
        assert_eq!(Reminders::from_canonical(Some("")), Reminders::Custom(vec![]));
        assert_eq!(r.minutes(ReminderMethod::Popup), vec![10]);
        assert_eq!(r.minutes(ReminderMethod::Email), vec![60]);
    }
}
