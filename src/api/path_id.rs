//! `PathUuid`: an id in a path, shown in the spec as `format: uuid` but read as text, so
//! that a malformed one is a 400 naming its parameter (poem-openapi's own parse error names
//! path parameters `param0`, `param1`, …).

use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseFromParameter, ParseResult};
use uuid::Uuid;

use super::error::ApiError;

/// A UUID path parameter, as sent.
#[derive(Debug, Clone)]
pub struct PathUuid(pub String);

impl PathUuid {
    /// The UUID, or 400 `invalid_field` naming `param`.
    pub fn parse(&self, param: &str) -> Result<Uuid, ApiError> {
        Uuid::parse_str(&self.0).map_err(|_| ApiError::invalid(param, format!("`{}` is not a UUID", self.0)))
    }
}

super::scalar_type!(PathUuid, "string_uuid", MetaSchema::new_with_format("string", "uuid"));

impl ParseFromParameter for PathUuid {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(PathUuid(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_id_names_its_parameter() {
        let id = Uuid::new_v4();
        assert_eq!(PathUuid(id.to_string()).parse("id").unwrap(), id);
        let ApiError::BadRequest(body) = PathUuid("not-a-uuid".into()).parse("user_id").unwrap_err() else {
            panic!("400 expected");
        };
        assert_eq!(body.0.field.as_deref(), Some("user_id"));
    }
}
