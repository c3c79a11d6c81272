//! Where the browser may be sent after connecting: a path on this service, or a URL on an
//! origin listed in `RETURN_TO_ORIGINS`. Checked by parsing, as a browser would read it, so
//! tricks a prefix check misses (`/\t/evil.example`, `/\evil.example`, `//evil.example`,
//! control characters, user-info) cannot redirect elsewhere.

use url::Url;

/// A base no real URL uses, to resolve relative targets the way a browser would.
const PROBE: &str = "https://return-to.invalid/";

/// Whether `raw` is an acceptable `return_to`: a relative path that stays on this origin,
/// or an absolute `http(s)` URL whose origin is one of `origins`.
pub fn is_allowed(raw: &str, origins: &[String]) -> bool {
    if raw.is_empty() || raw.len() > 2048 || raw.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return false;
    }
    if raw.starts_with('/') {
        // A path: resolved against a probe base, it must stay on the probe's origin.
        let base = Url::parse(PROBE).expect("the probe base parses");
        return !raw.starts_with("//")
            && base
                .join(raw)
                .is_ok_and(|u| u.origin() == base.origin() && u.username().is_empty() && u.password().is_none());
    }
    let Ok(url) = Url::parse(raw) else { return false };
    if !matches!(url.scheme(), "https" | "http") || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let origin = url.origin().ascii_serialization();
    origins.iter().any(|o| o.trim_end_matches('/') == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins() -> Vec<String> {
        vec!["https://app.example.com".to_owned()]
    }

    #[test]
    fn paths_on_this_service_and_listed_origins_are_allowed() {
        for ok in [
            "/settings",
            "/settings?tab=sync#top",
            "/a/b/../c",
            "https://app.example.com/done",
            "https://app.example.com:443/x",
        ] {
            assert!(is_allowed(ok, &origins()), "{ok}");
        }
    }

    #[test]
    fn every_way_out_to_another_origin_is_refused() {
        for bad in [
            "//evil.example/x",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            " /settings",
            "https://evil.example/x",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "https://user:pw@app.example.com/",
            "http://app.example.com/",
            "javascript:alert(1)",
            "data:text/html,hi",
            "settings",
            "",
        ] {
            assert!(!is_allowed(bad, &origins()), "{bad:?}");
        }
    }
}
