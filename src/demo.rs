//! `slotsync demo`: the service and an in-process Google emulator, wired together and
//! running, with a user connected through the real OAuth flow — two-way sync to try from
//! the shell without a Google project. Also home of the Google-side shell commands
//! (`slotsync emulator list|create|edit|delete`), which act on a running emulator as a
//! Google user would.
//!
//! It lives outside `emulator` (which depends on nothing else in the crate) and starts the
//! service exactly as `serve` does, through [`Application::build`].

pub mod google_side;
pub mod receiver;
pub mod script;
pub mod watch;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser};
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};

use crate::app::Application;
use crate::config::Settings;
use crate::emulator::{Emulator, EmulatorConfig, EmulatorHandle};

pub use google_side::GoogleSideCommand;

/// Options of `slotsync demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address the service listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Port of the service, replacing the one in `--bind` (0 picks a free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Address the Google emulator listens on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8085")]
    pub emulator_bind: SocketAddr,
    /// Email of the demo user, and of its Google account in the emulator.
    #[arg(long, default_value = "demo@example.com")]
    pub email: String,
}

/// The settings a demo run fixes; every other setting follows the environment and
/// `.env`, as for `serve`.
#[derive(Parser)]
struct EnvSettings {
    #[command(flatten)]
    settings: Settings,
}

/// The OAuth client the demo registers with its emulator.
const CLIENT_ID: &str = "slotsync-demo";

/// Runs the demo until `shutdown` completes (Ctrl-C or SIGTERM), then stops the service
/// gracefully, stops the emulator and deletes the demo's database.
pub async fn run(args: DemoArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut settings = EnvSettings::try_parse_from(["slotsync"])
        .context("reading the settings from the environment")?
        .settings;
    init_logging(&settings.log_format);
    let dir = std::env::temp_dir().join(format!("slotsync-demo-{}", random(10).to_lowercase()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = run_in(&args, &mut settings, &dir, shutdown).await;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => println!("slotsync demo stopped; removed {}", dir.display()),
        Err(e) => eprintln!("slotsync demo: could not remove {}: {e}", dir.display()),
    }
    result
}

async fn run_in(
    args: &DemoArgs,
    settings: &mut Settings,
    dir: &std::path::Path,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let google = Emulator::start(EmulatorConfig {
        bind: args.emulator_bind,
        ..EmulatorConfig::default()
    })
    .await
    .with_context(|| {
        format!(
            "cannot start the Google emulator on {}; choose another address with --emulator-bind (port 0 = any free port)",
            args.emulator_bind
        )
    })?;
    let emulator = format!("http://{}", reachable(google.addr()));
    let bind = service_addr(args)?;
    let service = format!("http://{}", reachable(bind));
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let client_secret = random(32);
    let redirect = format!("{service}/auth/google/callback");
    expect_ok(
        client
            .post(format!("{emulator}/_emulator/clients"))
            .json(&json!({"client_id": CLIENT_ID, "client_secret": client_secret, "redirect_uris": [redirect]}))
            .send()
            .await,
        "registering the OAuth client with the emulator",
    )
    .await?;

    let database = dir.join("slotsync-demo.db");
    let admin_token = format!("demo-admin-{}", random(24));
    settings.database_url = format!("sqlite://{}?mode=rwc", database.display());
    settings.bind_addr = bind;
    settings.public_base_url = Some(service.clone());
    settings.admin_token = Some(admin_token.clone());
    settings.secret_key = Some(random(48));
    settings.google_client_id = Some(CLIENT_ID.into());
    settings.google_client_secret = Some(client_secret);
    settings.oauth_redirect_uri = Some(redirect);
    settings.google_emulator_url = Some(emulator.clone());
    // Outbound webhooks to a receiver on this machine (http://127.0.0.1:…) are the demo's.
    settings.webhook_allow_private_targets = true;
    let app = Application::build(settings.clone()).await.with_context(|| {
        format!("the service did not start on {bind}; choose another port with --port (0 = any free port)")
    })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    tokio::pin!(shutdown);
    let session = Session {
        client: client.clone(),
        service: service.clone(),
        admin_token: admin_token.clone(),
    };
    let outcome = tokio::select! {
        ready = session.connect_user(&args.email) => Some(ready),
        () = &mut shutdown => None,
    };
    let mut watcher = None;
    let mut receiver_task = None;
    let result = match outcome {
        None => Ok(()),
        Some(Err(e)) => Err(e),
        Some(Ok(ready)) => {
            let (webhook, receiver) = start_receiver(&client, &service, &ready.api_token).await?;
            let tour = script::Tour {
                service: service.clone(),
                emulator: emulator.clone(),
                admin_token,
                api_token: ready.api_token.clone(),
                email: args.email.clone(),
                database: database.display().to_string(),
                channel: ready.channel,
                program: program(),
                webhook,
            };
            print!("{}", tour.render());
            watcher = Some(tokio::spawn(watch::print_slot_changes(
                client,
                service,
                ready.api_token,
            )));
            receiver_task = Some(receiver);
            tokio::select! {
                () = &mut shutdown => Ok(()),
                ended = &mut server => {
                    return finish(google, [watcher, receiver_task], Err(anyhow::anyhow!("the service stopped unexpectedly: {ended:?}"))).await;
                }
            }
        }
    };
    println!("stopping…");
    let _ = stop.send(());
    let served = server.await.context("the service task")?;
    let result = result.and(served.map_err(anyhow::Error::from));
    finish(google, [watcher, receiver_task], result).await
}

/// Stops the watcher, the webhook receiver and the emulator.
async fn finish(
    google: EmulatorHandle,
    tasks: [Option<tokio::task::JoinHandle<()>>; 2],
    result: anyhow::Result<()>,
) -> anyhow::Result<()> {
    for task in tasks.into_iter().flatten() {
        task.abort();
    }
    google.shutdown().await;
    result
}

/// Starts a webhook receiver on a free local port and registers it as the demo user's
/// endpoint: every change then arrives signed, is verified and printed. Answers its URL
/// and its task.
async fn start_receiver(
    client: &reqwest::Client,
    service: &str,
    token: &str,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("starting the demo's webhook receiver")?;
    let url = format!("http://{}/webhook", listener.local_addr()?);
    let registration = receiver::Registration::create(client, service, token, &url).await?;
    let verifier = receiver::Receiver::new(&[registration.secret])?;
    let task = tokio::spawn(async move {
        let _ = receiver::serve(listener, verifier, |line| watch::say(&line), std::future::pending()).await;
    });
    Ok((url, task))
}

/// Talks to the running service as its admin would.
struct Session {
    client: reqwest::Client,
    service: String,
    admin_token: String,
}

/// A connected demo user.
struct Ready {
    api_token: String,
    /// The live channel's id and expiry.
    channel: (String, String),
}

impl Session {
    /// Creates the user, connects its Google account through the browser flow (consent
    /// at the emulator, then our callback), and waits until the first pull is done and a
    /// notification channel is live.
    async fn connect_user(&self, email: &str) -> anyhow::Result<Ready> {
        let created = expect_ok(
            self.client
                .post(format!("{}/auth/users", self.service))
                .bearer_auth(&self.admin_token)
                .json(&json!({"email": email, "display_name": "Demo user"}))
                .send()
                .await,
            "creating the demo user",
        )
        .await?;
        let api_token = created["api_token"].as_str().unwrap_or_default().to_owned();
        let authorize = expect_ok(
            self.client
                .get(format!("{}/auth/google/authorize", self.service))
                .bearer_auth(&api_token)
                .send()
                .await,
            "asking for the Google consent URL",
        )
        .await?;
        let consent_url = authorize["url"].as_str().unwrap_or_default();
        let consent = self
            .client
            .get(consent_url)
            .send()
            .await
            .context("opening the consent URL")?;
        let callback = consent
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("the consent screen answered {} without a redirect", consent.status()))?;
        expect_ok(
            self.client.get(&callback).send().await,
            "completing the connection at /auth/google/callback",
        )
        .await?;
        let channel = self.wait_until_syncing(&api_token).await?;
        Ok(Ready { api_token, channel })
    }

    /// Waits (up to 20 s) until the connection is active, the first pull is done and a
    /// channel is live; answers the channel's id and expiry.
    async fn wait_until_syncing(&self, token: &str) -> anyhow::Result<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status = expect_ok(
                self.client
                    .get(format!("{}/sync/status", self.service))
                    .bearer_auth(token)
                    .send()
                    .await,
                "reading the sync status",
            )
            .await?;
            let channel = &status["pull"]["channels"][0];
            if status["connection"] == "active" && status["pull"]["sync_token_present"] == true && channel.is_object() {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                return Ok((text(&channel["id"]), text(&channel["expires_at"])));
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the demo user is connected but not syncing after 20 s; sync status: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The JSON body of a successful answer, or an error naming `what` failed.
async fn expect_ok(sent: reqwest::Result<reqwest::Response>, what: &str) -> anyhow::Result<Value> {
    let resp = sent.with_context(|| what.to_owned())?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        anyhow::bail!("{what}: {status} {body}");
    }
    Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The service's address: `--bind` with `--port`; port 0 is resolved to a free port now,
/// because the OAuth redirect URI and `PUBLIC_BASE_URL` must name it before it starts.
fn service_addr(args: &DemoArgs) -> anyhow::Result<SocketAddr> {
    let mut addr = args.bind;
    if let Some(port) = args.port {
        addr.set_port(port);
    }
    if addr.port() == 0 {
        let probe = std::net::TcpListener::bind(addr).with_context(|| format!("cannot bind {addr}"))?;
        addr = probe.local_addr()?;
    }
    Ok(addr)
}

/// An address others can call: a wildcard bind is reached through loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// How to run this binary again from a shell: its full path.
fn program() -> String {
    std::env::current_exe()
        .map(PathBuf::into_os_string)
        .ok()
        .and_then(|p| p.into_string().ok())
        .unwrap_or_else(|| "slotsync".into())
}

/// Random letters and digits.
fn random(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

/// Logs go to standard error, warnings and errors only unless `RUST_LOG` says otherwise,
/// so standard output carries the tour.
fn init_logging(format: &str) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_bind_is_reached_through_loopback() {
        assert_eq!(
            reachable("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            reachable("192.0.2.1:8080".parse().unwrap()),
            "192.0.2.1:8080".parse().unwrap()
        );
    }

    #[test]
    fn port_zero_is_resolved_before_the_service_starts() {
        let args = DemoArgs {
            bind: "127.0.0.1:8080".parse().unwrap(),
            port: Some(0),
            emulator_bind: "127.0.0.1:0".parse().unwrap(),
            email: "demo@example.com".into(),
        };
        assert_ne!(service_addr(&args).unwrap().port(), 0);
    }

    #[test]
    fn generated_secrets_pass_validation() {
        let mut settings = EnvSettings::try_parse_from(["slotsync"]).unwrap().settings;
        settings.admin_token = Some(format!("demo-admin-{}", random(24)));
        settings.secret_key = Some(random(48));
        settings.public_base_url = None;
        settings.google_emulator_url = None;
        settings.validate().unwrap();
    }
}
