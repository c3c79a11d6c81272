//! A faithful local stand-in for Google: OAuth 2.0, Calendar v3 and push notifications,
//! with fault injection and a control API under `/_emulator/`.
//!
//! It depends on nothing else in the crate and speaks Google's wire format (see
//! `docs/emulator.md`). Tests start it in-process on a random port:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use slotsync::emulator::{Emulator, EmulatorConfig};
//! let google = Emulator::start(EmulatorConfig::for_tests()).await?;
//! println!("calendar API at {}", google.calendar_base_url());
//! google.shutdown().await;
//! # Ok(()) }
//! ```

mod batch;
mod bulk;
mod calendars;
mod channels;
mod cli;
mod config;
mod consent;
mod control;
mod errors;
mod event_types;
mod events;
mod faults;
mod fields;
mod instance_list;
mod instances;
mod list;
mod meetings;
mod model;
mod oauth;
mod pipeline;
mod push;
mod recurrence;
mod seed;
mod split;
mod split_command;
mod state;
mod stats;
mod sync_token;
mod times;
mod token;
mod transient;

pub use cli::{run_cli, EmulatorArgs};
pub use config::{
    EmulatorConfig, OAuthClient, PushRetryConfig, QuotaConfig, QuotaStatus, DEFAULT_BIND, DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS,
};
pub use errors::{ApiError, ErrorExtras, OAuthError};
pub use faults::{BrokenClient, FaultPlan, FaultPlanError, Transient404};
pub use oauth::DEFAULT_USER;
pub use split_command::{run_split, SplitArgs};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{get, post, put, EndpointExt, Route, Server};
use state::{Shared, State};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Starts emulators.
pub struct Emulator;

/// A running emulator; dropping it stops the server.
pub struct EmulatorHandle {
    addr: SocketAddr,
    base_url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `config.bind` (port 0 picks a free port) and serves in the background.
    pub async fn start(config: EmulatorConfig) -> anyhow::Result<EmulatorHandle> {
        let acceptor = TcpListener::bind(config.bind.to_string()).into_acceptor().await?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| anyhow::anyhow!("the emulator listener has no socket address"))?;
        let base_url = config
            .public_base_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{addr}"));
        let http = reqwest::Client::builder().user_agent(push::USER_AGENT).build()?;
        let shared = Arc::new(Shared {
            state: parking_lot::Mutex::new(State::new(&config)),
            config,
            base_url: base_url.clone(),
            http,
            stopped: Default::default(),
            batch_wake: Default::default(),
        });
        tokio::spawn(batch::run_scheduler(Arc::clone(&shared)));
        let app = routes().data(Arc::clone(&shared));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = Server::new_with_acceptor(acceptor);
            let shutdown = async {
                let _ = stop_rx.await;
            };
            if let Err(e) = server
                .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(2)))
                .await
            {
                tracing::error!(error = %e, "google emulator stopped with an error");
            }
        });
        tracing::info!(%base_url, "google emulator listening");
        Ok(EmulatorHandle {
            addr,
            base_url,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

impl EmulatorHandle {
    /// Root URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Calendar API base, `{base}/calendar/v3/` (with the trailing slash google-calendar3
    /// needs).
    pub fn calendar_base_url(&self) -> String {
        format!("{}/calendar/v3/", self.base_url)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for it to finish; pending notifications are abandoned.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn signal_stop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.batch_wake.notify_one();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

fn routes() -> Route {
    Route::new()
        .at("/o/oauth2/v2/auth", get(oauth::authorize))
        .at("/o/oauth2/auth", get(oauth::authorize))
        .at("/token", post(token::token_endpoint))
        .at("/revoke", post(token::revoke))
        .at("/v1/userinfo", get(oauth::userinfo))
        .at("/oauth2/v3/userinfo", get(oauth::userinfo))
        .at("/oauth2/v3/certs", get(oauth::certs))
        .at("/oauth2/v3/tokeninfo", get(oauth::tokeninfo))
        .at("/.well-known/openid-configuration", get(oauth::discovery))
        .nest("/calendar/v3", calendar_routes())
        .nest("/_emulator", control_routes())
}

fn calendar_routes() -> Route {
    Route::new()
        .at("/calendars", post(calendars::insert))
        .at("/calendars/:calendar_id", get(calendars::get).delete(calendars::delete))
        .at("/calendars/:calendar_id/events", get(list::list).post(events::insert))
        .at("/calendars/:calendar_id/events/watch", post(channels::watch))
        .at(
            "/calendars/:calendar_id/events/:event_id",
            get(events::get)
                .put(events::update)
                .patch(events::patch)
                .delete(events::delete),
        )
        .at(
            "/calendars/:calendar_id/events/:event_id/instances",
            get(instance_list::instances),
        )
        .at("/channels/stop", post(channels::stop))
        .at("/users/me/calendarList", get(calendars::calendar_list))
}

fn control_routes() -> Route {
    Route::new()
        .at("/reset", post(control::reset))
        .at("/users", post(control::create_user).get(control::list_users))
        .at("/users/bulk", post(bulk::create_users))
        .at("/users/:email/token", post(control::user_token))
        .at("/stats", get(control::stats).delete(control::clear_stats))
        .at(
            "/faults",
            put(control::put_faults)
                .get(control::get_faults)
                .delete(control::clear_faults),
        )
        .at("/sync-tokens/invalidate", post(control::invalidate_sync_tokens))
        .at("/tokens/revoke", post(control::revoke_tokens))
        .at("/tokens/expire", post(control::expire_tokens))
        .at("/tokens/narrow", post(control::narrow_tokens))
        .at("/channels/expire", post(control::expire_channels))
        .at("/channels", get(control::list_channels))
        .at(
            "/calendars/:calendar_id/events",
            get(control::calendar_events).post(seed::seed_event),
        )
        .at("/meetings", post(seed::create_meeting))
        .at("/sent-updates", get(control::sent_updates))
        .at("/calendars/:calendar_id/events/:event_id/split", post(split::split))
        .at("/clients", post(control::register_client))
        .at("/consent", put(consent::set_consent).get(consent::get_consent))
}
