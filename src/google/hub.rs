//! Builds the real google-calendar3 client: hyper-rustls (HTTPS for Google, plain HTTP
//! allowed for a local emulator), the base URL from configuration, and a token source.

use google_calendar3::common;
use google_calendar3::common::GetToken;
use google_calendar3::hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use google_calendar3::hyper_util::client::legacy::connect::HttpConnector;
use google_calendar3::hyper_util::client::legacy::Client;
use google_calendar3::hyper_util::rt::TokioExecutor;
use google_calendar3::CalendarHub;

use super::GoogleEndpoints;

/// The HTTP client under every hub; clones share one connection pool.
pub type HttpClient = common::Client<HttpsConnector<HttpConnector>>;

/// The hub type slotsync uses.
pub type Hub = CalendarHub<HttpsConnector<HttpConnector>>;

/// A new HTTP client with its own connection pool.
pub fn http_client() -> HttpClient {
    let connector = HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A `CalendarHub` over `client`, talking to `endpoints.calendar`, asking `auth` for
/// tokens on every call.
pub fn hub_with(client: HttpClient, endpoints: &GoogleEndpoints, auth: impl GetToken + 'static) -> Hub {
    let mut hub = CalendarHub::new(client, auth);
    hub.base_url(endpoints.calendar.clone());
    let root = endpoints.calendar.trim_end_matches("calendar/v3/").to_owned();
    hub.root_url(root);
    hub
}

/// A `CalendarHub` with a connection pool of its own (for one-off calls).
pub fn calendar_hub(endpoints: &GoogleEndpoints, auth: impl GetToken + 'static) -> Hub {
    hub_with(http_client(), endpoints, auth)
}
