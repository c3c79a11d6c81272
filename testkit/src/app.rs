//! The service started in this process, as `slotsync serve` runs it (HTTP, push worker,
//! and the scheduler if the settings turn it on), or its routes alone.

use std::time::Duration;

use poem::listener::TcpAcceptor;
use poem::Server;
use reqwest::Client;
use slotsync::app::Application;
use slotsync::config::Settings;
use slotsync::state::AppState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::service::{ServiceClient, TestUser};

/// A running service. It keeps running until [`RunningApp::stop`] (or the end of the
/// test's runtime).
pub struct RunningApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub client: Client,
    pub state: AppState,
    stop: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
}

impl RunningApp {
    /// Starts the service on `settings.bind_addr`.
    pub async fn start(settings: Settings) -> Self {
        Self::start_on(settings, None).await
    }

    /// Starts the service, serving on `listener` if given (bound beforehand, so no other
    /// test can take its port between choosing it and the service binding it).
    pub async fn start_on(settings: Settings, listener: Option<std::net::TcpListener>) -> Self {
        let app = match listener {
            Some(listener) => Application::build_on(settings, listener).await,
            None => Application::build(settings).await,
        }
        .unwrap_or_else(|e| panic!("the app builds: {e:#}"));
        let address = format!("http://{}", app.addr());
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self::serving(address, state, stop, running)
    }

    /// The service's HTTP routes alone on any free port, without the push worker or the
    /// scheduler (a benchmark measures the API and the push apart).
    pub async fn start_api_only(mut settings: Settings) -> Self {
        settings.bind_addr = ([127, 0, 0, 1], 0).into();
        let state = Application::build(settings)
            .await
            .unwrap_or_else(|e| panic!("the app builds: {e:#}"))
            .state()
            .clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = format!("http://{}", listener.local_addr().expect("a bound address"));
        let acceptor = TcpAcceptor::from_tokio(listener).expect("an acceptor");
        let (stop, stopped) = oneshot::channel::<()>();
        let routes = slotsync::app::routes(state.clone());
        let running = tokio::spawn(async move {
            Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    routes,
                    async {
                        let _ = stopped.await;
                    },
                    Some(Duration::from_secs(10)),
                )
                .await
        });
        Self::serving(address, state, stop, running)
    }

    fn serving(
        address: String,
        state: AppState,
        stop: oneshot::Sender<()>,
        running: JoinHandle<std::io::Result<()>>,
    ) -> Self {
        Self {
            address,
            client: Client::new(),
            state,
            stop: Some((stop, running)),
        }
    }

    /// Stops the service gracefully (as on SIGTERM) and waits until it has.
    pub async fn stop(&mut self) {
        if let Some((stop, running)) = self.stop.take() {
            let _ = stop.send(());
            running
                .await
                .expect("the service task")
                .expect("the service stops cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The calls by address ([`ServiceClient`]), with this app's client.
    pub fn api(&self) -> ServiceClient {
        ServiceClient::new(self.address.clone(), self.client.clone())
    }

    /// Creates a user (admin) and returns its id and API token.
    pub async fn create_user(&self, email: &str) -> TestUser {
        self.api().create_user(email).await
    }

    /// The caller's sync status.
    pub async fn sync_status(&self, user: &TestUser) -> serde_json::Value {
        self.api().sync_status(user).await
    }

    /// Runs a scheduled job once through the admin route and returns its outcome.
    pub async fn run_job(&self, name: &str) -> serde_json::Value {
        self.api().run_job(name).await
    }

    /// Connects `user`'s Google account through the browser flow and returns the callback
    /// URL that was used (see [`ServiceClient::connect_google`]).
    pub async fn connect(&self, user: &TestUser) -> String {
        self.api().connect_google(user).await
    }

    /// Connects `user` and waits until the first pull that connecting requests is done
    /// (no pull in flight, a sync token stored), so the caller's own pulls and counters
    /// start from a settled state.
    pub async fn connect_and_settle(&self, user: &TestUser) {
        self.connect(user).await;
        let id = user.user_id();
        self.api()
            .wait_first_pull(user, || !self.state.pulls.in_flight(id))
            .await;
    }

    /// Creates a user and connects it (see [`RunningApp::connect_and_settle`]).
    pub async fn connected_user(&self, email: &str) -> TestUser {
        let user = self.create_user(email).await;
        self.connect_and_settle(&user).await;
        user
    }
}
