//! A span per request and a log line per answer, as poem's `Tracing` middleware writes
//! them (`request` span with the client address, version, method and URI; `response` or
//! `error` at `info`), except that the span's fields are computed only when the span is
//! enabled. poem's middleware formats the client address for every request, logs on or
//! off; at the webhook's rate that is measurable.

use std::time::Instant;

use poem::web::RealIp;
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, Response, Result};
use tracing::Instrument;

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
            uri = %req.original_uri(),
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
