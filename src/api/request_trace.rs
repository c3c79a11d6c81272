//! A span per request and a log line per answer, as poem's `Tracing` middleware writes
//! them (`request` span with the client address, version, method and URI; `response` or
//! `error` at `info`), except that the span's fields are computed only when the span is
//! enabled. poem's middleware formats the client address for every request, logs on or
//! off; at the webhook's rate that is measurable.

use std::time::Instant;

use poem::web::RealIp;
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, Response, Result};
use tracing::Instrument;

/// Routes whose query carries secrets (the OAuth callback's `code` and `state`): their
/// query values are never written to a log.
const SECRET_QUERY_PATHS: [&str; 1] = ["/auth/google/callback"];

/// A request URI as logged: on [`SECRET_QUERY_PATHS`], each query value is replaced by
/// `<redacted>` (the names stay, to tell a decline from a success).
pub struct LoggedUri<'a>(pub &'a poem::http::Uri);

impl std::fmt::Display for LoggedUri<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uri = self.0;
        match uri.query() {
            Some(query) if SECRET_QUERY_PATHS.contains(&uri.path()) => {
                f.write_str(uri.path())?;
                for (i, pair) in query.split('&').enumerate() {
                    let name = pair.split('=').next().unwrap_or_default();
                    write!(f, "{}{name}=<redacted>", if i == 0 { '?' } else { '&' })?;
                }
                Ok(())
            }
            _ => write!(f, "{uri}"),
        }
    }
}

/// The middleware.
#[derive(Default)]
pub struct RequestTrace;

impl<E: Endpoint> Middleware<E> for RequestTrace {
    type Output = RequestTraceEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestTraceEndpoint { inner: ep }
    }
}

/// An endpoint behind [`RequestTrace`].
pub struct RequestTraceEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestTraceEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let span = tracing::info_span!(
            "request",
            remote_addr = tracing::field::Empty,
            version = ?req.version(),
            method = %req.method(),
            uri = %LoggedUri(req.original_uri()),
        );
        if span.is_disabled() {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let remote_addr = RealIp::from_request_without_body(&req)
            .await
            .ok()
            .and_then(|real_ip| real_ip.0)
            .map(|addr| addr.to_string())
            .unwrap_or_else(|| req.remote_addr().to_string());
        span.record("remote_addr", tracing::field::display(&remote_addr));
        async move {
            let started = Instant::now();
            let res = self.inner.call(req).await;
            let duration = started.elapsed();
            match res {
                Ok(resp) => {
                    let resp = resp.into_response();
                    tracing::info!(status = %resp.status(), ?duration, "response");
                    Ok(resp)
                }
                Err(err) => {
                    tracing::info!(status = %err.status(), error = %err, ?duration, "error");
                    Err(err)
                }
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(uri: &str) -> String {
        LoggedUri(&uri.parse().unwrap()).to_string()
    }

    #[test]
    fn the_callbacks_code_and_state_never_reach_a_log() {
        assert_eq!(
            logged("/auth/google/callback?code=4%2F0AbC&state=eyJ1Ijo&scope=openid"),
            "/auth/google/callback?code=<redacted>&state=<redacted>&scope=<redacted>"
        );
        assert_eq!(
            logged("/auth/google/callback?error=access_denied&state=s"),
            "/auth/google/callback?error=<redacted>&state=<redacted>"
        );
        assert_eq!(logged("/slots?limit=5&cursor=abc"), "/slots?limit=5&cursor=abc");
        assert_eq!(logged("/auth/google/callback"), "/auth/google/callback");
    }
}
