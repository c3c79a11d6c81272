//! Emulator configuration and its documented defaults.

use std::net::SocketAddr;
use std::time::Duration;

/// Client id of the OAuth client registered by default.
pub const DEFAULT_CLIENT_ID: &str = "slotsync-dev-client";
/// Client secret of the OAuth client registered by default.
pub const DEFAULT_CLIENT_SECRET: &str = "slotsync-dev-secret";
/// Redirect URIs of the OAuth client registered by default.
pub const DEFAULT_REDIRECT_URIS: [&str; 2] = [
    "http://127.0.0.1:8080/auth/google/callback",
    "http://localhost:8080/auth/google/callback",
];
/// Default bind address of `slotsync emulator`.
pub const DEFAULT_BIND: &str = "127.0.0.1:8085";
/// Default access-token lifetime (Google's `expires_in`).
pub const DEFAULT_ACCESS_TOKEN_SECS: u64 = 3599;
/// Default push channel ttl (7 days).
pub const DEFAULT_CHANNEL_TTL_SECS: u64 = 604_800;
/// Default cap on any channel ttl (30 days).
pub const DEFAULT_CHANNEL_TTL_CAP_SECS: u64 = 2_592_000;

/// An OAuth 2.0 client as registered in the (emulated) Cloud console.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OAuthClient {
    /// The `client_id`.
    pub client_id: String,
    /// The `client_secret`.
    pub client_secret: String,
    /// Redirect URIs accepted by the authorization endpoint (exact match).
    pub redirect_uris: Vec<String>,
}

impl OAuthClient {
    /// The default development client (`slotsync-dev-client` / `slotsync-dev-secret`).
    pub fn default_dev_client() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            redirect_uris: DEFAULT_REDIRECT_URIS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Which answer the per-user quota gives when exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum QuotaStatus {
    /// 403 `userRateLimitExceeded` (domain `usageLimits`).
    #[default]
    #[value(name = "403")]
    Forbidden403,
    /// 429 `rateLimitExceeded` (domain `usageLimits`).
    #[value(name = "429")]
    TooMany429,
}

/// Per-user request quota on the Calendar API (sliding 60 s window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Requests allowed per user in any 60 s window.
    pub per_user_per_minute: u32,
    /// The error answered past the limit.
    pub status: QuotaStatus,
}

/// Delivery settings for push notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushRetryConfig {
    /// Attempts per notification, the first included (answers 500/502/503/504 are retried).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles on each further retry.
    pub initial_backoff: Duration,
    /// Per-attempt HTTP timeout.
    pub request_timeout: Duration,
}

impl Default for PushRetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Everything the emulator can be configured with.
///
/// Defaults: bind `127.0.0.1:8085`, no seed (entropy), one OAuth client
/// ([`OAuthClient::default_dev_client`]), access tokens valid 3599 s, channel ttl 604 800 s
/// capped at 2 592 000 s, no quota, no public base URL override.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to bind (`127.0.0.1:0` picks a free port).
    pub bind: SocketAddr,
    /// Seed for every random choice (ids, tokens, faults). `None` seeds from entropy.
    pub seed: Option<u64>,
    /// Registered OAuth clients.
    pub clients: Vec<OAuthClient>,
    /// Lifetime of issued access tokens.
    pub access_token_lifetime: Duration,
    /// Lifetime of authorization codes.
    pub auth_code_lifetime: Duration,
    /// Channel ttl when `events.watch` names none.
    pub channel_ttl_default: Duration,
    /// Upper bound on any channel ttl.
    pub channel_ttl_cap: Duration,
    /// Optional per-user quota; `None` disables it.
    pub quota: Option<QuotaConfig>,
    /// Push delivery retry policy.
    pub push_retry: PushRetryConfig,
    /// Base URL written into the discovery document and resource URIs instead of
    /// `http://{bound address}` (e.g. when behind a proxy). No trailing slash.
    pub public_base_url: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            bind: DEFAULT_BIND.parse().expect("valid default bind address"),
            seed: None,
            clients: vec![OAuthClient::default_dev_client()],
            access_token_lifetime: Duration::from_secs(DEFAULT_ACCESS_TOKEN_SECS),
            auth_code_lifetime: Duration::from_secs(600),
            channel_ttl_default: Duration::from_secs(DEFAULT_CHANNEL_TTL_SECS),
            channel_ttl_cap: Duration::from_secs(DEFAULT_CHANNEL_TTL_CAP_SECS),
            quota: None,
            push_retry: PushRetryConfig::default(),
            public_base_url: None,
        }
    }
}

impl EmulatorConfig {
    /// A config bound to `127.0.0.1:0` (a free port), as tests want it.
    pub fn for_tests() -> Self {
        Self {
            bind: "127.0.0.1:0".parse().expect("valid address"),
            seed: Some(42),
            push_retry: PushRetryConfig {
                initial_backoff: Duration::from_millis(50),
                ..PushRetryConfig::default()
            },
            ..Self::default()
        }
    }
}
