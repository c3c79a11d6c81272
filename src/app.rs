//! `Application::build(settings)`: connect, migrate, bind, assemble routes. `main` and
//! the tests start the service the same way; binding port 0 works.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::endpoint::IntoEndpoint;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::{get, handler, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server};

use std::num::NonZeroU32;

use governor::{Quota, RateLimiter};

use crate::api::{self, error::render_any_error, rate_limit::InboundRateLimit, request_trace::RequestTrace};
use crate::config::Settings;
use crate::crypto::Keys;
use crate::domain::BreakerRule;
use crate::google::client_health::ClientHealth;
use crate::google::limits::GoogleLimits;
use crate::google::oauth::{OAuthClient, OAuthError};
use crate::google::vault::TokenVault;
use crate::google::{CalendarGateway, GoogleCalendar, GoogleEndpoints};
use crate::state::{AppParts, AppState};
use crate::store::{self, GroupCommit};
use crate::sync::channel_directory::ChannelDirectory;
use crate::sync::coalesce::PullCoordinator;
use crate::sync::context::{SyncContext, SyncParts};
use crate::sync::fleet::Fleet;
use crate::sync::not_found::NotFoundRetry;
use crate::sync::pull::{PullConfig, Puller};
use crate::sync::push::{PushConfig, Pusher};
use crate::sync::PushWaker;

/// A built, bound, not yet running service.
pub struct Application {
    addr: SocketAddr,
    acceptor: TcpAcceptor,
    state: AppState,
}

impl Application {
    /// Validates settings, opens and migrates the database, binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let listener = tokio::net::TcpListener::bind(settings.bind_addr)
            .await
            .with_context(|| format!("cannot bind {} (BIND_ADDR)", settings.bind_addr))?;
        Self::build_on(settings, listener.into_std()?).await
    }

    /// As [`Application::build`], serving on a listener bound beforehand (by a supervisor,
    /// or by a caller that must know the port before the service starts); `BIND_ADDR` is
    /// not used.
    pub async fn build_on(settings: Settings, listener: std::net::TcpListener) -> anyhow::Result<Self> {
        settings.validate()?;
        let inbound_limit = InboundRateLimit::new(&settings)?;
        let db = store::connect_with(&settings.database_url, settings.pool_size())
            .await
            .with_context(|| "cannot open the database named by DATABASE_URL")?;
        store::migrate(&db).await.context("database migration failed")?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let keys = Keys::derive(settings.secret_key());
        crate::google::vault::reseal_legacy(&db, &keys)
            .await
            .context("sealing stored tokens in the current format failed")?;
        let endpoints = GoogleEndpoints::from_settings(&settings);
        let client_health = Arc::new(ClientHealth::new());
        let oauth = OAuthClient::new(
            &endpoints,
            settings.google_client_id.as_deref(),
            settings.google_client_secret.as_deref(),
            settings.oauth_redirect_uri.as_deref(),
        )
        .map(|client| client.with_client_health(Arc::clone(&client_health)))
        .map_err(|e| match e {
            OAuthError::NotConfigured(var) => var,
            _ => "GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET / OAUTH_REDIRECT_URI",
        });
        crate::sync::channels::warn_if_off(&settings);
        if let Err(var) = &oauth {
            tracing::warn!("Google OAuth is off until {var} is set; slots stay pending until users connect");
        }
        let vault = Arc::new(TokenVault::new(db.clone(), keys.clone(), oauth.clone()));
        let authorize_limiter = Arc::new(RateLimiter::keyed(Quota::per_minute(
            NonZeroU32::new(api::google_auth::AUTHORIZE_PER_MINUTE).expect("non-zero"),
        )));
        let limits = Arc::new(GoogleLimits::new(
            NonZeroU32::new(settings.google_user_calls_per_minute).expect("validated"),
            NonZeroU32::new(settings.google_calls_per_minute).expect("validated"),
        ));
        let fleet = Arc::new(Fleet::new(Arc::clone(&limits)));
        let gateway: Arc<dyn CalendarGateway> =
            Arc::new(GoogleCalendar::new(endpoints.clone(), Arc::clone(&vault), limits));
        let writes = Arc::new(GroupCommit::new(db.clone()));
        let pusher = Arc::new(Pusher::new(
            Arc::clone(&writes),
            Arc::clone(&gateway),
            push_config(&settings, &keys),
            Arc::clone(&client_health),
        ));
        let puller = Arc::new(Puller::new(
            db.clone(),
            Arc::clone(&gateway),
            pull_config(&settings, &keys),
            Arc::clone(&client_health),
        ));
        let pulls = PullCoordinator::new(puller, Duration::from_millis(settings.pull_debounce_ms));
        let state = AppState::new(AppParts {
            sync: SyncContext::new(SyncParts {
                db,
                writes,
                settings: Arc::new(settings),
                push_waker: PushWaker::default(),
                keys,
                endpoints,
                oauth,
                vault,
                gateway,
                pusher,
                pulls,
                channel_directory: ChannelDirectory::default(),
                fleet,
                client_health,
            }),
            metrics: crate::observe::handle(),
            outbox_depth: Default::default(),
            job_backlogs: Default::default(),
            authorize_limiter,
            inbound_limit,
        });
        Ok(Self { addr, acceptor, state })
    }

    /// The bound address (the real port when `BIND_ADDR` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (tests reach the database through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves, runs the push worker and the job scheduler until `shutdown` completes; then
    /// stops accepting, lets in-flight requests finish (up to 10 s), stops the scheduler,
    /// lets running pulls finish (up to 10 s), and lets the worker finish the pushes it
    /// started. Slots left dirty by an earlier crash are pushed as soon as it starts.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let local = self.acceptor.local_addr();
        tracing::debug!(?local, "accepting connections");
        let (stop_worker, worker_stop) = tokio::sync::watch::channel(false);
        let worker =
            tokio::spawn(Arc::clone(&self.state.pusher).run(self.state.push_waker.clone(), worker_stop.clone()));
        let deliverer = Arc::new(crate::sync::webhooks::Deliverer::new(
            self.state.sync.clone(),
            crate::api::changes::render_json,
        ));
        let deliveries = tokio::spawn(deliverer.run(worker_stop.clone()));
        // The first heartbeat before the jobs start, so they run within this instance's share.
        if let Err(e) = self.state.fleet.beat(&self.state.db).await {
            tracing::warn!(error = %e, "the first heartbeat failed");
        }
        let probe = tokio::spawn(probe_client(self.state.sync.clone(), worker_stop.clone()));
        let heartbeat = tokio::spawn(Arc::clone(&self.state.fleet).run(self.state.db.clone(), worker_stop));
        // A disconnect that was deleting slotsync's events when a process stopped goes on.
        match crate::sync::disconnect::resume_unfinished(&self.state.sync).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(users = n, "resumed unfinished disconnects"),
            Err(e) => tracing::warn!(error = %e, "could not look for unfinished disconnects"),
        }
        let scheduler = if self.state.settings.scheduler_enabled {
            match crate::jobs::start(&self.state).await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "the job scheduler did not start; check the SCHEDULE_* settings");
                    None
                }
            }
        } else {
            None
        };
        let app = routes(self.state.clone());
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
            .await;
        // No new claims from jobs; runs under way end at their next claim.
        self.state.pusher.stop();
        if let Some(scheduler) = scheduler {
            scheduler.stop(Duration::from_secs(10)).await;
        }
        self.state.pulls.shutdown(Duration::from_secs(10)).await;
        let _ = stop_worker.send(true);
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "the push worker panicked");
        }
        if let Err(e) = deliveries.await {
            tracing::error!(error = %e, "the webhook delivery worker panicked");
        }
        if let Err(e) = heartbeat.await {
            tracing::error!(error = %e, "the heartbeat task panicked");
        }
        if let Err(e) = probe.await {
            tracing::error!(error = %e, "the OAuth client probe panicked");
        }
        served
    }
}

/// The push engine's settings.
fn push_config(settings: &Settings, keys: &Keys) -> PushConfig {
    PushConfig {
        concurrency: settings.push_concurrency,
        per_user_in_flight: settings.push_per_user_in_flight,
        lease: Duration::from_secs(settings.push_lease_secs),
        backoff: settings.push_backoff(),
        policy: settings.conflict_policy,
        origin: origin(settings, keys),
        breaker_failures: settings.user_breaker_failures,
        breaker_cooldown: Duration::from_secs(settings.user_breaker_cooldown_secs),
        idle_poll: Duration::from_secs(5),
        not_found: NotFoundRetry::from_settings(settings),
    }
}

/// While Google refuses the deployment's OAuth client, probes the token endpoint once per
/// `GOOGLE_CLIENT_PROBE_SECS` until it is accepted again (then everything resumes).
async fn probe_client(sync: SyncContext, stop: tokio::sync::watch::Receiver<bool>) {
    let Ok(oauth) = sync.oauth.clone() else { return };
    let every = Duration::from_secs(sync.settings.google_client_probe_secs);
    let oauth = &oauth;
    let probe = move || async move {
        oauth.probe_client().await;
    };
    crate::google::client_health::run_probe(&sync.client_health, every, stop, probe).await;
}

/// This deployment's `slotsync_origin`.
fn origin(settings: &Settings, keys: &Keys) -> String {
    settings.deployment_id.clone().unwrap_or_else(|| keys.deployment_id())
}

/// The pull's settings.
fn pull_config(settings: &Settings, keys: &Keys) -> PullConfig {
    PullConfig {
        defaults: settings.sync_defaults(),
        origin: origin(settings, keys),
        breaker: BreakerRule {
            threshold: settings.slot_breaker_alternations,
            window: chrono::Duration::seconds(i64::try_from(settings.slot_breaker_window_secs).unwrap_or(60)),
        },
        lease: Duration::from_secs(settings.pull_lease_secs),
        guard: crate::sync::held::DeletionGuard {
            enabled: settings.mass_delete_guard,
            min: settings.mass_delete_min,
            percent: settings.mass_delete_percent,
        },
        not_found: NotFoundRetry::from_settings(settings),
    }
}

#[handler]
fn openapi_json() -> impl IntoResponse {
    api::spec_json().with_content_type("application/json")
}

/// Every route of the service with its middleware.
pub fn routes(state: AppState) -> impl Endpoint {
    let service = api::service();
    let docs = Route::new()
        .nest("/docs", service.swagger_ui())
        .at("/openapi.json", get(openapi_json));
    let limit = state.inbound_limit.clone();
    ApiBesideDocs {
        api: service.into_endpoint(),
        docs,
    }
    .with(limit)
    .catch_all_error(render_any_error)
    .around(|ep, req| async move {
        let path = req.uri().path().to_owned();
        let mut resp = ep.get_response(req).await;
        if resp.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
            if let Some(allow) = api::allow::allowed_methods(&path) {
                resp.headers_mut()
                    .insert(poem::http::header::ALLOW, poem::http::HeaderValue::from_static(allow));
            }
        }
        Ok(resp)
    })
    .with(RequestTrace)
    .data(state)
}

/// The API, with the Swagger UI and the spec beside it, told apart by their paths. Nesting
/// the API under `/` in a `Route` would cost every API request a wildcard match, a decoded
/// copy of its path and a rewritten URI: about a sixth of what a notification costs the
/// service (instructions counted with callgrind).
struct ApiBesideDocs<A, D> {
    api: A,
    docs: D,
}

impl<A: Endpoint, D: Endpoint> Endpoint for ApiBesideDocs<A, D> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path();
        if path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/") {
            self.docs.call(req).await.map(IntoResponse::into_response)
        } else {
            self.api.call(req).await.map(IntoResponse::into_response)
        }
    }
}
