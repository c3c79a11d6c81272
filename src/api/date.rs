//! `Date`: a calendar day, `yyyy-mm-dd`, shown in the spec with the standard `format: date`
//! (poem-openapi's `NaiveDate` says `naive-date`, which no client generator or Swagger UI
//! knows).

use chrono::NaiveDate;
use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON};
use serde_json::Value;

/// A calendar day, `yyyy-mm-dd` (RFC 3339 `full-date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Date(pub NaiveDate);

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Date(d)
    }
}

super::scalar_type!(Date, "string_date", MetaSchema::new_with_format("string", "date"));

impl ParseFromJSON for Date {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(Date(s.parse()?)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ParseFromParameter for Date {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Date(value.parse()?))
    }
}

impl ToJSON for Date {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.format("%Y-%m-%d").to_string()))
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::registry::MetaSchemaRef;
    use poem_openapi::types::Type;

    use super::*;

    #[test]
    fn the_spec_says_format_date_and_values_round_trip() {
        let MetaSchemaRef::Inline(schema) = Date::schema_ref() else {
            panic!("inline schema expected");
        };
        assert_eq!((schema.ty, schema.format), ("string", Some("date")));
        let d = Date::parse_from_json(Some(Value::String("2026-03-29".into()))).unwrap();
        assert_eq!(d.to_json(), Some(Value::String("2026-03-29".into())));
        assert!(Date::parse_from_json(Some(Value::String("29.03.2026".into()))).is_err());
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2026-03-29\"");
    }
}
