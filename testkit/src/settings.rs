//! The service's settings in tests and benchmarks.

use clap::Parser;
use slotsync::config::Settings;

/// The admin token of every service the kit configures.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// The `SECRET_KEY` of every service the kit configures (tests derive its keys too).
pub const SECRET_KEY: &str = "test-secret-key-0123456789abcdefghijklmnop";
/// The OAuth client registered at the emulator ([`crate::Google::register_client`]).
pub const CLIENT_ID: &str = "test-client";
/// The secret of [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "test-secret";

#[derive(Parser)]
struct SettingsArgs {
    #[command(flatten)]
    settings: Settings,
}

/// The OAuth callback of a service on `127.0.0.1:port`.
pub fn callback_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/auth/google/callback")
}

/// Settings for a test: `Settings::for_tests(url)` with this trait in scope.
///
/// A trait of the kit rather than a function of `slotsync::config`: the test secrets stay
/// out of the service's code, and the service's crate needs no test-only feature.
pub trait TestSettings: Sized {
    /// The settings `slotsync serve` would read — the environment (`PUSH_CONCURRENCY`, …)
    /// and the defaults — with the test secrets ([`ADMIN_TOKEN`], [`SECRET_KEY`]),
    /// `database_url`, a listener on any free port of 127.0.0.1, an inbound rate limit
    /// out of the way (100 000 a minute), and the scheduler off: jobs run on demand
    /// (`run_once`, or `POST /admin/jobs/{name}/run`).
    fn for_tests(database_url: &str) -> Self;

    /// Points the settings at the emulator at `google_base_url` (OAuth with [`CLIENT_ID`]
    /// and Calendar API), for a service listening on `127.0.0.1:port` whose callback is
    /// [`callback_url`]`(port)`.
    fn use_google(&mut self, google_base_url: &str, port: u16);
}

impl TestSettings for Settings {
    fn for_tests(database_url: &str) -> Self {
        SettingsArgs::try_parse_from([
            "slotsync",
            "--database-url",
            database_url,
            "--bind-addr",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN_TOKEN,
            "--secret-key",
            SECRET_KEY,
            "--rate-limit-per-minute",
            "100000",
            "--scheduler-enabled",
            "false",
            // Outbound webhooks go to receivers on this machine, and are retried quickly.
            "--webhook-allow-private-targets",
            "true",
            "--webhook-retry-schedule",
            "0.2,0.3,0.5,1,2,4",
        ])
        .unwrap_or_else(|e| panic!("the test settings do not parse (check the environment): {e}"))
        .settings
    }

    fn use_google(&mut self, google_base_url: &str, port: u16) {
        self.bind_addr = ([127, 0, 0, 1], port).into();
        self.google_client_id = Some(CLIENT_ID.into());
        self.google_client_secret = Some(CLIENT_SECRET.into());
        self.oauth_redirect_uri = Some(callback_url(port));
        self.google_emulator_url = Some(google_base_url.to_owned());
    }
}
