//! `slotsync webhook-listen`: a receiver for slotsync's outbound webhooks, for trying
//! them from a shell. It verifies each delivery's Standard Webhooks signature
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the endpoint's secret and
//! prints one line per delivery. Given an API token instead of a secret, it registers
//! itself as one of the user's endpoints, and removes that endpoint when it stops.
//!
//! `slotsync demo` runs one in-process, so the demo shows a Google edit arrive as a
//! signed webhook.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use poem::http::{HeaderMap, Method, StatusCode};
use poem::listener::TcpAcceptor;
use poem::{handler, web::Data, Body, EndpointExt, Request, Response, Server};
use serde_json::{json, Value};
use standardwebhooks::Webhook;
use tokio::net::TcpListener;

/// Largest body the receiver reads (slotsync's deliveries are a few KiB).
const MAX_BODY: usize = 1 << 20;

/// Options of `slotsync webhook-listen`.
#[derive(Debug, Clone, Args)]
pub struct WebhookListenArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub bind: SocketAddr,
    /// Port, replacing the one in `--bind` (0 picks a free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// The endpoint's signing secret (`whsec_…`, from `POST /webhook-endpoints`). Repeat it
    /// to accept either of two secrets, as after a rotation.
    #[arg(long = "secret", env = "WEBHOOK_SECRET", value_delimiter = ',')]
    pub secrets: Vec<String>,
    /// Instead of a secret: a user's API token; the receiver registers itself as one of
    /// that user's webhook endpoints (and deletes it when it stops).
    #[arg(long, env = "SLOTSYNC_TOKEN")]
    pub token: Option<String>,
    /// The slotsync service to register with (with `--token`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub service: String,
}

/// Verifies deliveries with one or more secrets.
pub struct Receiver {
    hooks: Vec<Webhook>,
}

/// A delivery whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// `webhook-id`: the same on every attempt of one delivery.
    pub id: String,
    /// The body: `{"type", "timestamp", "data"}`.
    pub body: Value,
}

impl Receiver {
    /// A receiver accepting a signature made with any of `secrets`.
    pub fn new(secrets: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !secrets.is_empty(),
            "no secret to verify with: pass --secret whsec_… (shown when the endpoint was created) or --token to register one"
        );
        let hooks = secrets
            .iter()
            .map(|s| {
                let s = s.trim();
                anyhow::ensure!(
                    s.starts_with("whsec_"),
                    "--secret {s:?} is not a webhook secret: they start with whsec_"
                );
                Webhook::new(s).map_err(|e| anyhow::anyhow!("--secret {s:?} is not a webhook secret: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { hooks })
    }

    /// The delivery, when its signature verifies with one of the secrets and its timestamp
    /// is within five minutes of now; otherwise why not.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, String> {
        let id = headers
            .get(standardwebhooks::HEADER_WEBHOOK_ID)
            .and_then(|v| v.to_str().ok())
            .ok_or("no webhook-id header")?
            .to_owned();
        let mut last = String::new();
        for hook in &self.hooks {
            match hook.verify(body, headers) {
                Ok(()) => {
                    let body = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
                    return Ok(Delivery { id, body });
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("the signature did not verify ({last})"))
    }
}

/// One line telling what a delivery says.
pub fn describe(delivery: &Delivery) -> String {
    let body = &delivery.body;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let kind = text(&body["type"]);
    let data = &body["data"];
    let origin = data["origin"]
        .as_str()
        .map(|o| format!(" (origin {o})"))
        .unwrap_or_default();
    let about = if data["slot"].is_object() {
        let slot = &data["slot"];
        format!(
            " slot {} {:?} {} → {}",
            text(&slot["id"]).get(..8).unwrap_or_default(),
            text(&slot["title"]),
            text(&slot["start"]),
            text(&slot["end"])
        )
    } else if data["detail"].is_object() {
        format!(" {}", data["detail"])
    } else {
        String::new()
    };
    format!(
        "webhook {kind}{origin}{about}, signature verified (webhook-id {})",
        delivery.id
    )
}

/// Serves `receiver` on `listener`, calling `report` with each line to print, until
/// `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    receiver: Receiver,
    report: impl Fn(String) + Send + Sync + 'static,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let app = receive.data(Arc::new(Listening {
        receiver,
        report: Box::new(report),
    }));
    Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(2)))
        .await
}

/// What the handler works with.
struct Listening {
    receiver: Receiver,
    report: Box<dyn Fn(String) + Send + Sync>,
}

/// Every path: a POST is a delivery.
#[handler]
async fn receive(req: &Request, body: Body, Data(listening): Data<&Arc<Listening>>) -> Response {
    let (receiver, report) = (&listening.receiver, &listening.report);
    if req.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "deliveries are POSTed");
    }
    let Ok(bytes) = body.into_bytes_limit(MAX_BODY).await else {
        return answer(StatusCode::PAYLOAD_TOO_LARGE, "body too large or unreadable");
    };
    match receiver.verify(req.headers(), &bytes) {
        Ok(delivery) => {
            report(describe(&delivery));
            Response::builder().status(StatusCode::NO_CONTENT).finish()
        }
        Err(why) => {
            report(format!("refused a delivery to {}: {why}", req.uri().path()));
            // Not 2xx: slotsync retries it, with the same webhook-id.
            answer(StatusCode::UNAUTHORIZED, &why)
        }
    }
}

fn answer(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(json!({ "message": message }).to_string())
}

/// A user's endpoint, registered by the receiver.
pub struct Registration {
    client: reqwest::Client,
    service: String,
    token: String,
    /// The endpoint's id.
    pub id: String,
    /// Its signing secret.
    pub secret: String,
}

impl Registration {
    /// Registers `url` as one of the token's user's webhook endpoints.
    pub async fn create(client: &reqwest::Client, service: &str, token: &str, url: &str) -> anyhow::Result<Self> {
        let service = service.trim_end_matches('/').to_owned();
        let resp = client
            .post(format!("{service}/webhook-endpoints"))
            .bearer_auth(token)
            .json(&json!({ "url": url }))
            .send()
            .await
            .with_context(|| format!("cannot reach slotsync at {service}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!(
                "registering {url} with {service}/webhook-endpoints: {status} {body} (a local URL needs WEBHOOK_ALLOW_PRIVATE_TARGETS=true on the service)"
            );
        }
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            client: client.clone(),
            service,
            token: token.to_owned(),
            id: text("id"),
            secret: text("secret"),
        })
    }

    /// Deletes the endpoint.
    pub async fn delete(self) -> anyhow::Result<()> {
        let resp = self
            .client
            .delete(format!("{}/webhook-endpoints/{}", self.service, self.id))
            .bearer_auth(&self.token)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "deleting endpoint {}: {}",
            self.id,
            resp.status()
        );
        Ok(())
    }
}

/// Runs `slotsync webhook-listen` until `shutdown` completes.
pub async fn run(args: WebhookListenArgs, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let mut bind = args.bind;
    if let Some(port) = args.port {
        bind.set_port(port);
    }
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}; choose another port with --port (0 = any free port)"))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{}/webhook", super::reachable(addr));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()?;
    let (registration, secrets) = match (&args.token, args.secrets.is_empty()) {
        (Some(token), true) => {
            let registration = Registration::create(&client, &args.service, token, &url).await?;
            println!(
                "registered {url} as webhook endpoint {} of the token's user",
                registration.id
            );
            let secret = registration.secret.clone();
            (Some(registration), vec![secret])
        }
        _ => (None, args.secrets.clone()),
    };
    let receiver = Receiver::new(&secrets)?;
    println!("listening on {url}: every delivery is verified and printed; Ctrl-C stops");
    let served = serve(listener, receiver, |line| println!("  ⇢ {line}"), shutdown).await;
    if let Some(registration) = registration {
        let id = registration.id.clone();
        match registration.delete().await {
            Ok(()) => println!("deleted webhook endpoint {id}"),
            Err(e) => eprintln!("slotsync webhook-listen: could not delete endpoint {id}: {e:#}"),
        }
    }
    served.context("the receiver")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, id: &str, body: &str) -> HeaderMap {
        let ts = chrono::Utc::now().timestamp();
        let signature = Webhook::new(secret).unwrap().sign(id, ts, body.as_bytes()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(standardwebhooks::HEADER_WEBHOOK_ID, id.parse().unwrap());
        headers.insert(
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            ts.to_string().parse().unwrap(),
        );
        headers.insert(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature.parse().unwrap());
        headers
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn a_delivery_signed_with_the_secret_is_accepted_and_described() {
        let body = r#"{"type":"slot.updated","timestamp":"2026-11-30T10:00:00Z","data":{"origin":"google","slot":{"id":"0123456789abcdef","title":"Moved in Google","start":"2026-12-01T11:00:00Z","end":"2026-12-01T12:30:00Z"}}}"#;
        let receiver = Receiver::new(&[SECRET.into()]).unwrap();
        let delivery = receiver
            .verify(&signed(SECRET, "msg_1", body), body.as_bytes())
            .unwrap();
        assert_eq!(delivery.id, "msg_1");
        let line = describe(&delivery);
        assert!(
            line.starts_with(r#"webhook slot.updated (origin google) slot 01234567 "Moved in Google""#),
            "{line}"
        );
        assert!(line.contains("signature verified"), "{line}");
    }

    #[test]
    fn another_secret_or_a_changed_body_is_refused() {
        let body = r#"{"type":"slot.created","data":{}}"#;
        let receiver = Receiver::new(&[SECRET.into()]).unwrap();
        assert!(receiver.verify(&signed(OTHER, "msg_1", body), body.as_bytes()).is_err());
        let tampered = r#"{"type":"slot.deleted","data":{}}"#;
        assert!(receiver
            .verify(&signed(SECRET, "msg_1", body), tampered.as_bytes())
            .is_err());
        // Either secret of a rotation is accepted.
        let both = Receiver::new(&[SECRET.into(), OTHER.into()]).unwrap();
        assert!(both.verify(&signed(OTHER, "msg_1", body), body.as_bytes()).is_ok());
    }

    #[test]
    fn no_secret_is_a_clear_error() {
        let err = Receiver::new(&[]).err().unwrap().to_string();
        assert!(err.contains("--secret"), "{err}");
        for bad in ["nope", "whsec_not base64!"] {
            let err = Receiver::new(&[bad.into()]).err().unwrap().to_string();
            assert!(err.contains("not a webhook secret"), "{bad}: {err}");
        }
    }
}
