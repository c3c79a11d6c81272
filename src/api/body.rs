//! `JsonBody<T>`: a strict JSON request body. Malformed JSON, wrong types and unknown
//! fields all become a 400 that names the field at fault. The schema shown in the spec is
//! `T`'s poem-openapi schema; parsing is serde's (with `deny_unknown_fields`), which knows
//! the path of a bad value.

use std::marker::PhantomData;

use poem::{Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A parsed JSON body plus the SHA-256 of its canonical form (for idempotency keys).
/// The spec shows `S`'s schema (by default `T`'s), for a body read as one type but
/// described as another (a flat object shown as a `oneOf`).
pub struct JsonBody<T, S = T> {
    pub value: T,
    pub canonical_hash: String,
    schema: PhantomData<fn() -> S>,
}

impl<T: Send, S: Type> Payload for JsonBody<T, S> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.type_() == "application"
            && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        S::schema_ref()
    }

    fn register(registry: &mut Registry) {
        S::register(registry);
    }
}

/// Reads the error's field: serde's path, or the name in "unknown/missing field `x`".
fn field_of(path: &serde_path_to_error::Path, message: &str) -> String {
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.split(marker).nth(1) {
            if let Some(name) = rest.split('`').next() {
                let full = path.to_string();
                return if full == "." {
                    name.to_owned()
                } else if full == name || full.ends_with(&format!(".{name}")) {
                    full
                } else {
                    format!("{full}.{name}")
                };
            }
        }
    }
    path.to_string()
}

/// The value with object keys sorted at every level, so that key order does not matter.
fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    fn write(v: &serde_json::Value, out: &mut Vec<u8>) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).expect("a string serialises"));
                    out.push(b':');
                    write(&map[k], out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            other => out.extend(serde_json::to_vec(other).expect("a scalar serialises")),
        }
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

impl<T: DeserializeOwned + Send, S: Type> ParsePayload for JsonBody<T, S> {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = body.take()?.into_bytes_limit(MAX_BODY_BYTES).await.map_err(|_| {
            ApiError::bad_request(
                "body_too_large",
                format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
            )
        })?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request("malformed_json", "a JSON request body is required").into());
        }
        let raw: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}")))?;
        if !raw.is_object() {
            return Err(ApiError::bad_request("malformed_json", "the body must be a JSON object").into());
        }
        let canonical = canonical_json(&raw);
        let value: T = serde_path_to_error::deserialize(raw).map_err(|e| {
            let message = e.inner().to_string();
            let field = field_of(e.path(), &message);
            ApiError::invalid(&field, message)
        })?;
        Ok(Self {
            value,
            canonical_hash: hex::encode(Sha256::digest(&canonical)),
            schema: PhantomData,
        })
    }
}

impl<'a, T: DeserializeOwned + Send, S: Type> ApiExtractor<'a> for JsonBody<T, S> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(ct) if <Self as Payload>::check_content_type(ct) => {
                <Self as ParsePayload>::from_request(request, body).await
            }
            Some(ct) => Err(ApiError::unsupported_content_type(format!(
                "content type `{ct}` is not supported; send application/json"
            ))
            .into()),
            None => Err(ApiError::unsupported_content_type(
                "the Content-Type header is missing; send application/json",
            )
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        title: String,
        n: Option<u32>,
    }

    fn field_for(json: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let e = serde_path_to_error::deserialize::<_, Probe>(v).unwrap_err();
        field_of(e.path(), &e.inner().to_string())
    }

    #[test]
    fn key_order_does_not_change_the_canonical_form() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":null}}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":{"x":null,"y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_ne!(canonical_json(&a), canonical_json(&serde_json::json!({"b": 2})));
    }

    #[test]
    fn serde_errors_name_the_field() {
        assert_eq!(field_for(r#"{"title":"x","bogus":1}"#), "bogus");
        assert_eq!(field_for(r#"{"n":1}"#), "title");
        assert_eq!(field_for(r#"{"title":5}"#), "title");
        assert_eq!(field_for(r#"{"title":"x","n":"many"}"#), "n");
    }
}
