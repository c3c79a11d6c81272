//! The `Allow` header of a 405: the methods the spec lists for the request's path
//! (RFC 9110 §15.5.6 requires it; poem's router does not know it when it answers 405).

use std::sync::OnceLock;

/// One path of the spec: its segments (`None` for a `{parameter}`) and its methods.
struct PathMethods {
    segments: Vec<Option<String>>,
    allow: String,
}

fn table() -> &'static [PathMethods] {
    static TABLE: OnceLock<Vec<PathMethods>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&super::spec_json()).expect("the spec is JSON");
        let mut table: Vec<PathMethods> = spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, ops)| PathMethods {
                        segments: path
                            .split('/')
                            .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                            .collect(),
                        allow: ops
                            .as_object()
                            .map(|o| o.keys().map(|m| m.to_uppercase()).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Served beside the API, not in the spec.
        for path in ["/openapi.json", "/docs"] {
            table.push(PathMethods {
                segments: path.split('/').map(|s| Some(s.to_owned())).collect(),
                allow: "GET".into(),
            });
        }
        table
    })
}

/// The methods `path` answers, as an `Allow` value; `None` for a path no route has.
/// A literal segment beats a parameter (`/auth/users/me` before `/auth/users/{user_id}`).
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    table()
        .iter()
        .filter(|p| {
            p.segments.len() == segments.len()
                && p.segments
                    .iter()
                    .zip(&segments)
                    .all(|(want, got)| want.as_deref().is_none_or(|w| w == *got))
        })
        .max_by_key(|p| p.segments.iter().filter(|s| s.is_some()).count())
        .map(|p| p.allow.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_header_lists_the_methods_of_the_path() {
        assert_eq!(allowed_methods("/slots"), Some("GET, POST"));
        let id = uuid::Uuid::new_v4();
        assert_eq!(allowed_methods(&format!("/slots/{id}")), Some("DELETE, GET, PUT"));
        assert_eq!(allowed_methods("/auth/users/me"), Some("GET"));
        assert_eq!(allowed_methods("/openapi.json"), Some("GET"));
        assert_eq!(allowed_methods("/nowhere"), None);
    }
}
