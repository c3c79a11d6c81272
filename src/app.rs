//! `Application::build(settings)`: connect, migrate, bind, assemble routes. `main` and
//! the tests start the service the same way; binding port 0 works.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::middleware::Tracing;
use poem::{get, handler, Endpoint, EndpointExt, IntoResponse, Route, Server};

use crate::api::{self, error::render_any_error, rate_limit::InboundRateLimit};
use crate::config::Settings;
use crate::state::AppState;
use crate::store;
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
        let db = store::connect(&settings.database_url)
            .await
            .with_context(|| "cannot open the database named by DATABASE_URL")?;
        store::migrate(&db).await.context("database migration failed")?;
        let listener = tokio::net::TcpListener::bind(settings.bind_addr)
            .await
            .with_context(|| format!("cannot bind {} (BIND_ADDR)", settings.bind_addr))?;
        let addr = listener.local_addr()?;
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let state = AppState {
            db,
            settings: Arc::new(settings),
            push_waker: PushWaker::default(),
        };
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

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight
    /// requests finish (up to 10 s).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let local = self.acceptor.local_addr();
        tracing::debug!(?local, "accepting connections");
        let app = routes(self.state.clone());
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
            .await
    }
}

#[handler]
fn openapi_json() -> impl IntoResponse {
    api::spec_json().with_content_type("application/json")
}

/// Every route of the service with its middleware.
pub fn routes(state: AppState) -> impl Endpoint {
    let service = api::service();
    let ui = service.swagger_ui();
    let limit = InboundRateLimit::per_minute(state.settings.rate_limit_per_minute);
    Route::new()
        .nest("/", service)
        .nest("/docs", ui)
        .at("/openapi.json", get(openapi_json))
        .with(limit)
        .catch_all_error(render_any_error)
        .with(Tracing)
        .data(state)
}
