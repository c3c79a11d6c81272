//! The emulator tests' own fixtures, on the shared test kit (`slotsync-testkit`): the kit's
//! emulator and typed control client, plus raw HTTP for exact wire details and a push
//! notification receiver.

use parking_lot::Mutex;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{handler, EndpointExt, Request, Response, Route, Server};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use slotsync::emulator::EmulatorConfig;
use slotsync_testkit::Google;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

pub use slotsync_testkit::wait_for;

/// The emulator under test (the kit's [`Google`]: its typed control client, `stats`,
/// `user_token`, `hub_with_token`, …) plus a raw HTTP client that does not follow redirects.
pub struct TestGoogle {
    google: Google,
    pub http: reqwest::Client,
}

impl Deref for TestGoogle {
    type Target = Google;

    fn deref(&self) -> &Google {
        &self.google
    }
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestGoogle {
    /// An emulator with the test defaults (port 0, seed 42).
    pub async fn start() -> Self {
        Self::start_with(EmulatorConfig::for_tests()).await
    }

    /// An emulator with a custom configuration.
    pub async fn start_with(config: EmulatorConfig) -> Self {
        let google = Google::start_with(config).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self { google, http }
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// Sends a request and parses the JSON body (`Null` when empty or not JSON).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// `GET` with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    /// `POST` JSON to the control API.
    pub async fn control(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, &format!("/_emulator{path}"), None, Some(body), &[])
            .await
    }

    /// `PUT /_emulator/consent` with `body`.
    pub async fn put_consent(&self, body: Value) -> Answer {
        self.send(Method::PUT, "/_emulator/consent", None, Some(body), &[])
            .await
    }

    /// Inserts an event into `calendar` and returns it (asserting 200).
    pub async fn insert(&self, token: &str, calendar: &str, event: Value) -> Value {
        let a = self
            .send(
                Method::POST,
                &format!("/calendar/v3/calendars/{calendar}/events"),
                Some(token),
                Some(event),
                &[],
            )
            .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        a.body
    }
}

/// A one-hour timed event on 2025-03-{day} at `hour`:00 UTC.
pub fn timed_event(summary: &str, day: u32, hour: u32) -> Value {
    json!({
        "summary": summary,
        "start": {"dateTime": format!("2025-03-{day:02}T{hour:02}:00:00Z")},
        "end": {"dateTime": format!("2025-03-{day:02}T{:02}:00:00Z", hour + 1)},
    })
}

/// The Google error `reason` of an answer.
pub fn reason(a: &Answer) -> &str {
    a.body["error"]["errors"][0]["reason"].as_str().unwrap_or_default()
}

/// The JSON body of a google-calendar3 error (Google's `{"error":{…}}`).
pub fn google_error_body(e: &google_calendar3::Error) -> Value {
    match e {
        google_calendar3::Error::BadRequest(v) => v.clone(),
        other => panic!("expected a Google JSON error, got {other:?}"),
    }
}

/// One notification as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body_len: usize,
    pub answered: u16,
}

impl Received {
    /// A header value (names are lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_lowercase()).map(String::as_str)
    }

    /// `X-Goog-Message-Number` as a number.
    pub fn number(&self) -> u64 {
        self.header("x-goog-message-number")
            .and_then(|n| n.parse().ok())
            .expect("message number")
    }

    /// `X-Goog-Resource-State`.
    pub fn state(&self) -> &str {
        self.header("x-goog-resource-state").unwrap_or_default()
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    answers: Mutex<VecDeque<u16>>,
}

/// A small HTTP server standing in for slotsync's webhook.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[handler]
async fn receive(req: &Request, body: Vec<u8>, Data(state): Data<&Arc<ReceiverState>>) -> Response {
    let answered = state.answers.lock().pop_front().unwrap_or(200);
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    state.received.lock().push(Received {
        headers,
        body_len: body.len(),
        answered,
    });
    Response::builder()
        .status(poem::http::StatusCode::from_u16(answered).expect("status"))
        .finish()
}

impl Receiver {
    /// Starts a receiver on a free port.
    pub async fn start() -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind receiver");
        let addr = *acceptor.local_addr()[0].as_socket_addr().expect("socket");
        let state = Arc::new(ReceiverState::default());
        let app = Route::new().at("/hook", poem::post(receive)).data(Arc::clone(&state));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    async {
                        let _ = rx.await;
                    },
                    None,
                )
                .await;
        });
        Self { addr, state, _stop: tx }
    }

    /// The webhook address.
    pub fn address(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Queues statuses for the next answers (200 afterwards).
    pub fn answer_next_with(&self, statuses: &[u16]) {
        self.state.answers.lock().extend(statuses.iter().copied());
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().clone()
    }

    /// Waits until at least `n` notifications arrived and returns them all.
    pub async fn wait_for_count(&self, n: usize) -> Vec<Received> {
        wait_for(&format!("{n} notifications"), Duration::from_secs(10), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}
