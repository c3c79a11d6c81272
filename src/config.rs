//! Settings, read from the environment (and `.env`) or the command line, validated at
//! startup. Secrets are never logged: `Debug` redacts them.

use std::net::SocketAddr;

use clap::Args;

use crate::domain::import_filter::{parse_type_policies, TypePolicies};
use crate::domain::{ConflictPolicy, ImportFilter, RetrySchedule, SyncSettings};

/// Everything `slotsync serve` needs. Each flag can also be given as the environment
/// variable named in `--help`; a `.env` file in the working directory is honoured.
#[derive(Args, Clone)]
pub struct Settings {
    /// Database URL: SQLite (`sqlite://file.db?mode=rwc`) or PostgreSQL (`postgres://…`).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://slotsync.db?mode=rwc")]
    pub database_url: String,

    /// Connections in the database pool (default: 8 on SQLite, 16 on PostgreSQL). Size it
    /// to at least twice `FALLBACK_CONCURRENCY` on PostgreSQL: each fallback pull holds a
    /// connection for each statement, and the fallback uses at most half the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: Option<u32>,

    /// Address the HTTP server binds to (port 0 picks a free port).
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: SocketAddr,

    /// Public HTTPS base URL under which Google reaches the webhook (e.g. an ngrok URL).
    /// Without it, push-notification channels are off and the fallback sync carries the load.
    #[arg(long, env = "PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Bearer token for admin routes (at least 16 characters).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Server secret (at least 32 bytes, random); derives the HMAC and AES-256-GCM keys.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// OAuth client id from the Google Cloud console (or the emulator's).
    #[arg(long, env = "GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,

    /// OAuth client secret from the Google Cloud console (or the emulator's).
    #[arg(long, env = "GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    pub google_client_secret: Option<String>,

    /// Redirect URI registered with Google; must end with `/auth/google/callback`.
    #[arg(long, env = "OAUTH_REDIRECT_URI")]
    pub oauth_redirect_uri: Option<String>,

    /// Points every Google endpoint (OAuth and Calendar) at a slotsync emulator instead of Google.
    #[arg(long, env = "GOOGLE_EMULATOR_URL")]
    pub google_emulator_url: Option<String>,

    /// Origins (scheme://host[:port], comma separated) that `return_to` may name after a
    /// Google connection; relative paths are always allowed.
    #[arg(long, env = "RETURN_TO_ORIGINS", value_delimiter = ',')]
    pub return_to_origins: Vec<String>,

    /// Inbound requests allowed per API token (or per client IP without one) per minute.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,

    /// Proxies (IP addresses or CIDR networks, comma separated) whose `X-Forwarded-For` names
    /// the client for the inbound limit: the right-most entry that is not itself a trusted
    /// proxy. Empty (the default): the TCP peer is the client and the header is ignored.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Google Calendar calls allowed per user per minute (Google's per-user quota is 600).
    #[arg(long, env = "GOOGLE_USER_CALLS_PER_MINUTE", default_value_t = 600)]
    pub google_user_calls_per_minute: u32,

    /// Google Calendar calls allowed per minute for the whole deployment (Google's
    /// per-project quota is 10 000).
    #[arg(long, env = "GOOGLE_CALLS_PER_MINUTE", default_value_t = 10_000)]
    pub google_calls_per_minute: u32,

    /// Who wins when a slot changed on both sides since the last sync: `latest_wins` (the
    /// later change), `app_wins` or `google_wins`.
    #[arg(long, env = "CONFLICT_POLICY", default_value = "latest_wins",
          value_parser = parse_conflict_policy)]
    pub conflict_policy: ConflictPolicy,

    /// Pushes to Google in flight at once (per instance).
    #[arg(long, env = "PUSH_CONCURRENCY", default_value_t = 32)]
    pub push_concurrency: usize,

    /// Pushes of one user in flight at once, counted over every instance (claimed slots
    /// count until their push ends), so one user's backlog cannot hold every push slot
    /// while it waits on that user's Google limit. Claims take users in turn.
    #[arg(long, env = "PUSH_PER_USER_IN_FLIGHT", default_value_t = 4)]
    pub push_per_user_in_flight: usize,

    /// How long a claimed slot is held by the instance pushing it, in seconds. If that
    /// instance dies, the slot is pushed by another (or after a restart) once this passes.
    #[arg(long, env = "PUSH_LEASE_SECS", default_value_t = 60)]
    pub push_lease_secs: u64,

    /// How long a pull may hold a user's pull claim, in seconds (the same, for pulls).
    #[arg(long, env = "PULL_LEASE_SECS", default_value_t = 120)]
    pub pull_lease_secs: u64,

    /// Delay before the first retry of a failed push, in milliseconds; it doubles with each
    /// failure (±25 % jitter) up to `PUSH_RETRY_MAX_SECS`.
    #[arg(long, env = "PUSH_RETRY_BASE_MS", default_value_t = 1_000)]
    pub push_retry_base_ms: u64,

    /// Longest delay between two attempts of a push, in seconds.
    #[arg(long, env = "PUSH_RETRY_MAX_SECS", default_value_t = 900)]
    pub push_retry_max_secs: u64,

    /// Consecutive failed Google calls of one user after which that user's breaker opens.
    #[arg(long, env = "USER_BREAKER_FAILURES", default_value_t = 10)]
    pub user_breaker_failures: u32,

    /// How many times a 404 on an event slotsync knows is asked again (with backoff) before
    /// it counts as deleted in Google: Google's errors guide says a 404 may be transient.
    #[arg(long, env = "GOOGLE_NOT_FOUND_RETRIES", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub google_not_found_retries: u32,

    /// Delay before asking again after such a 404, in milliseconds; it doubles with each
    /// retry (±25 % jitter).
    #[arg(long, env = "GOOGLE_NOT_FOUND_RETRY_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub google_not_found_retry_ms: u64,

    /// While Google refuses the deployment's OAuth client (`invalid_client`,
    /// `deleted_client`), one probe of the token endpoint per this many seconds finds out
    /// when it is accepted again.
    #[arg(long, env = "GOOGLE_CLIENT_PROBE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub google_client_probe_secs: u64,

    /// How long an open user breaker stops Google calls, in seconds.
    #[arg(long, env = "USER_BREAKER_COOLDOWN_SECS", default_value_t = 60)]
    pub user_breaker_cooldown_secs: u64,

    /// This deployment's id, written into every event as `slotsync_origin` (default:
    /// derived from SECRET_KEY, so it is stable and shared by all instances).
    #[arg(long, env = "DEPLOYMENT_ID")]
    pub deployment_id: Option<String>,

    /// How long a pull waits after being requested, so a burst of notifications costs one
    /// pull, in milliseconds.
    #[arg(long, env = "PULL_DEBOUNCE_MS", default_value_t = 250)]
    pub pull_debounce_ms: u64,

    /// How far back a full sync lists events, in days (events ending earlier are left alone).
    #[arg(long, env = "FULL_SYNC_WINDOW_DAYS", default_value_t = 30)]
    pub full_sync_window_days: u32,

    /// Import events created in Google (without a slotsync tag) as slots with `source = google`.
    #[arg(long, env = "IMPORT_GOOGLE_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub import_google_events: bool,

    /// What becomes of Google's special event types, as `type=policy` pairs (comma
    /// separated; `skip`, `read_only` or `import`); types left out keep the default
    /// shown. A user may choose otherwise (`PATCH /sync/settings`).
    #[arg(long, env = "IMPORT_EVENT_TYPES",
          default_value = "outOfOffice=read_only,focusTime=read_only,fromGmail=read_only,birthday=skip,workingLocation=skip",
          value_parser = parse_type_policies)]
    pub import_event_types: TypePolicies,

    /// Do not import events marked free (`transparency: transparent`).
    #[arg(long, env = "IMPORT_SKIP_FREE", default_value_t = false, action = clap::ArgAction::Set)]
    pub import_skip_free: bool,

    /// Do not import private or confidential events.
    #[arg(long, env = "IMPORT_SKIP_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub import_skip_private: bool,

    /// Do not import meetings the user declined.
    #[arg(long, env = "IMPORT_SKIP_DECLINED", default_value_t = true, action = clap::ArgAction::Set)]
    pub import_skip_declined: bool,

    /// Lifetime asked of Google for each notification channel, in seconds (Google's default
    /// is 7 days).
    #[arg(long, env = "CHANNEL_TTL_SECS", default_value_t = 604_800)]
    pub channel_ttl_secs: u64,

    /// Channels expiring within this many seconds are renewed by the `renew_channels` job.
    #[arg(long, env = "CHANNEL_RENEW_BEFORE_SECS", default_value_t = 86_400)]
    pub channel_renew_before_secs: u64,

    /// Alternations between local and Google changes of one slot, within the window, that
    /// trip the slot's breaker (the slot is paused).
    #[arg(long, env = "SLOT_BREAKER_ALTERNATIONS", default_value_t = 5)]
    pub slot_breaker_alternations: u32,

    /// The slot breaker's window, in seconds.
    #[arg(long, env = "SLOT_BREAKER_WINDOW_SECS", default_value_t = 60)]
    pub slot_breaker_window_secs: u64,

    /// Hold a pull's deletions for the user to confirm when there are more of them than
    /// MASS_DELETE_MIN or MASS_DELETE_PERCENT % of the user's linked slots, whichever is
    /// larger (`GET /sync/held-deletions`). `false` applies every deletion at once.
    #[arg(long, env = "MASS_DELETE_GUARD", default_value_t = true, action = clap::ArgAction::Set)]
    pub mass_delete_guard: bool,

    /// Deletions one pull may always apply (the guard's floor).
    #[arg(long, env = "MASS_DELETE_MIN", default_value_t = 10)]
    pub mass_delete_min: u64,

    /// Share of a user's linked slots (percent, 1-100) one pull may delete.
    #[arg(long, env = "MASS_DELETE_PERCENT", default_value_t = 25)]
    pub mass_delete_percent: u64,

    /// Cron schedule (with seconds) of the `renew_channels` job (every minute, so the
    /// renewals of channels spread by their jittered lifetimes stay spread).
    #[arg(long, env = "SCHEDULE_RENEW_CHANNELS", default_value = "0 * * * * *")]
    pub schedule_renew_channels: String,

    /// Cron schedule (with seconds) of the `fallback_sync` job: each run claims the
    /// connections whose fallback pull is due (see `FALLBACK_INTERVAL_SECS`) and pulls them.
    #[arg(long, env = "SCHEDULE_FALLBACK_SYNC", default_value = "*/30 * * * * *")]
    pub schedule_fallback_sync: String,

    /// Each active connection is pulled by the fallback sync once per this many seconds
    /// (for notifications Google dropped), at its own phase within the interval.
    #[arg(long, env = "FALLBACK_INTERVAL_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub fallback_interval_secs: u64,

    /// A connection whose channel delivered a notification within the interval is pulled
    /// by the fallback only every this many intervals (1: every interval).
    #[arg(long, env = "FALLBACK_QUIET_FACTOR", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub fallback_quiet_factor: u32,

    /// Fallback pulls one instance runs at once (within the per-user and per-project
    /// Google limits); also the size of each batch of due connections it claims.
    #[arg(long, env = "FALLBACK_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub fallback_concurrency: u64,

    /// Cron schedule (with seconds) of the `retry_pushes` job.
    #[arg(long, env = "SCHEDULE_RETRY_PUSHES", default_value = "*/30 * * * * *")]
    pub schedule_retry_pushes: String,

    /// Cron schedule (with seconds) of the `refresh_tokens` job.
    #[arg(long, env = "SCHEDULE_REFRESH_TOKENS", default_value = "0 */5 * * * *")]
    pub schedule_refresh_tokens: String,

    /// Cron schedule (with seconds) of the `purge_old_records` job (retention: old
    /// idempotency keys, sync events and ended channels are deleted).
    #[arg(long, env = "SCHEDULE_PURGE_OLD_RECORDS", default_value = "0 30 3 * * *",
          value_parser = crate::jobs::parse_schedule)]
    pub schedule_purge_old_records: String,

    /// Idempotency keys (and the responses they replay) are deleted this many hours after
    /// their first use; a retry sent later creates the slot again.
    #[arg(long, env = "IDEMPOTENCY_RETENTION_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_retention_hours: u64,

    /// Sync events (the audit and conflict log) are deleted after this many days.
    #[arg(long, env = "AUDIT_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_retention_days: u64,

    /// Entries of the change feed (`GET /changes`) are kept this many days; a client whose
    /// cursor is older is answered 410 `cursor_expired` and reads `GET /slots` again.
    #[arg(long, env = "CHANGE_RETENTION_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub change_retention_days: u64,

    /// Let outbound webhooks reach private, loopback and link-local addresses, and plain
    /// `http://` (off: only `https://` targets that resolve to public addresses, checked
    /// when the endpoint is saved and again at every send). The demo and the tests turn it
    /// on; a deployment should not.
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_TARGETS", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private_targets: bool,

    /// When an outbound webhook delivery is tried again after a failure, in seconds after
    /// the previous attempt, comma-separated; after the last one the delivery is `failed`
    /// (default: about a day; ±10 % jitter).
    #[arg(long, env = "WEBHOOK_RETRY_SCHEDULE", default_value = "5,300,1800,7200,18000,36000,36000",
          value_parser = parse_retry_schedule)]
    pub webhook_retry_schedule: RetrySchedule,

    /// An endpoint whose every attempt failed for this many hours is disabled (a
    /// `webhook.endpoint_disabled` change tells the user); `PATCH enabled=true` turns it on.
    #[arg(long, env = "WEBHOOK_DISABLE_AFTER_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_disable_after_hours: u64,

    /// After a secret rotation the old secret keeps signing (beside the new one) this long.
    #[arg(long, env = "WEBHOOK_SECRET_GRACE_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u64).range(0..=720))]
    pub webhook_secret_grace_hours: u64,

    /// Notification channels are deleted this many days after they were stopped (or
    /// expired without being stopped).
    #[arg(long, env = "CHANNEL_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub channel_retention_days: u64,

    /// Run the scheduled jobs in this process (turn off to run them elsewhere, or in tests
    /// that run jobs on demand).
    #[arg(long, env = "SCHEDULER_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub scheduler_enabled: bool,

    /// Bearer token `GET /metrics` requires (at least 16 characters); unset, the route is
    /// open and should be reachable by the scraper only.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true,
          value_parser = crate::api::metrics::parse_metrics_token)]
    pub metrics_token: Option<String>,

    /// A scrape reads the outbox depth from the database at most once per this many
    /// seconds (per instance); scrapes in between answer the last value.
    #[arg(long, env = "METRICS_CACHE_SECS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub metrics_cache_secs: u64,

    /// Log format: `pretty` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"])]
    pub log_format: String,
}

/// A setting that stops startup, with the variable to fix and what it expects.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    /// The environment variable (or flag) at fault.
    pub variable: &'static str,
    /// What is wrong and what is expected.
    pub problem: String,
}

/// Minimum lengths for the two secrets.
pub const MIN_SECRET_KEY_BYTES: usize = 32;
/// Minimum length of `ADMIN_TOKEN`.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

impl Settings {
    /// The database pool's size: `DATABASE_MAX_CONNECTIONS`, or the backend's default.
    pub fn pool_size(&self) -> u32 {
        self.database_max_connections
            .unwrap_or_else(|| crate::store::default_pool_size(&self.database_url))
    }

    /// Checks the secrets and URLs; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let admin = self.admin_token.as_deref().unwrap_or("");
        if admin.is_empty() {
            return Err(ConfigError {
                variable: "ADMIN_TOKEN",
                problem: format!("is not set; expected a random string of at least {MIN_ADMIN_TOKEN_CHARS} characters"),
            });
        }
        if admin.chars().count() < MIN_ADMIN_TOKEN_CHARS || is_low_entropy(admin) {
            return Err(ConfigError {
                variable: "ADMIN_TOKEN",
                problem: format!(
                    "is too weak; expected a random string of at least {MIN_ADMIN_TOKEN_CHARS} characters"
                ),
            });
        }
        let secret = self.secret_key.as_deref().unwrap_or("");
        if secret.is_empty() {
            return Err(ConfigError {
                variable: "SECRET_KEY",
                problem: format!(
                    "is not set; expected at least {MIN_SECRET_KEY_BYTES} random bytes, e.g. `head -c 32 /dev/urandom | base64`"
                ),
            });
        }
        if secret.len() < MIN_SECRET_KEY_BYTES || is_low_entropy(secret) {
            return Err(ConfigError {
                variable: "SECRET_KEY",
                problem: format!(
                    "is too weak ({} bytes); expected at least {MIN_SECRET_KEY_BYTES} random bytes, e.g. `head -c 32 /dev/urandom | base64`",
                    secret.len()
                ),
            });
        }
        if let Some(url) = &self.public_base_url {
            check_url("PUBLIC_BASE_URL", url)?;
            // Google refuses channel addresses that are not https (push.webhookUrlNotHttps);
            // only the emulator accepts http.
            if self.google_emulator_url.is_none() && !url.starts_with("https://") {
                return Err(ConfigError {
                    variable: "PUBLIC_BASE_URL",
                    problem: format!(
                        "`{url}` is not https: Google delivers notifications only to https addresses \
                         (use a tunnel such as ngrok.yml's for local runs); http is accepted only with GOOGLE_EMULATOR_URL"
                    ),
                });
            }
        }
        if let Some(url) = &self.google_emulator_url {
            check_url("GOOGLE_EMULATOR_URL", url)?;
        }
        for (variable, value) in [
            ("RATE_LIMIT_PER_MINUTE", u64::from(self.rate_limit_per_minute)),
            (
                "GOOGLE_USER_CALLS_PER_MINUTE",
                u64::from(self.google_user_calls_per_minute),
            ),
            ("GOOGLE_CALLS_PER_MINUTE", u64::from(self.google_calls_per_minute)),
            ("PUSH_CONCURRENCY", self.push_concurrency as u64),
            ("PUSH_PER_USER_IN_FLIGHT", self.push_per_user_in_flight as u64),
            ("PUSH_RETRY_BASE_MS", self.push_retry_base_ms),
            ("PUSH_LEASE_SECS", self.push_lease_secs),
            ("PULL_LEASE_SECS", self.pull_lease_secs),
            ("PUSH_RETRY_MAX_SECS", self.push_retry_max_secs),
            ("USER_BREAKER_FAILURES", u64::from(self.user_breaker_failures)),
            ("FULL_SYNC_WINDOW_DAYS", u64::from(self.full_sync_window_days)),
            ("CHANNEL_TTL_SECS", self.channel_ttl_secs),
            ("SLOT_BREAKER_ALTERNATIONS", u64::from(self.slot_breaker_alternations)),
            ("SLOT_BREAKER_WINDOW_SECS", self.slot_breaker_window_secs),
            ("MASS_DELETE_PERCENT", self.mass_delete_percent),
        ] {
            if value == 0 {
                return Err(ConfigError {
                    variable,
                    problem: "must be at least 1".into(),
                });
            }
        }
        self.check_upper_bounds()?;
        for (variable, schedule) in [
            ("SCHEDULE_RENEW_CHANNELS", &self.schedule_renew_channels),
            ("SCHEDULE_FALLBACK_SYNC", &self.schedule_fallback_sync),
            ("SCHEDULE_RETRY_PUSHES", &self.schedule_retry_pushes),
            ("SCHEDULE_REFRESH_TOKENS", &self.schedule_refresh_tokens),
        ] {
            if tokio_cron_scheduler::Job::new(schedule.as_str(), |_, _| {}).is_err() {
                return Err(ConfigError {
                    variable,
                    problem: format!(
                        "`{schedule}` is not a cron schedule; expected six fields with seconds first, \
                         e.g. `0 */15 * * * *` for every 15 minutes"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Durations and limits stay in ranges that make sense and cannot overflow the
    /// conversions they go through (seconds to `chrono::Duration`, retry doubling…).
    fn check_upper_bounds(&self) -> Result<(), ConfigError> {
        const DAY: u64 = 86_400;
        for (variable, value, max, unit) in [
            (
                "RATE_LIMIT_PER_MINUTE",
                u64::from(self.rate_limit_per_minute),
                1_000_000,
                "",
            ),
            (
                "GOOGLE_USER_CALLS_PER_MINUTE",
                u64::from(self.google_user_calls_per_minute),
                1_000_000,
                "",
            ),
            (
                "GOOGLE_CALLS_PER_MINUTE",
                u64::from(self.google_calls_per_minute),
                10_000_000,
                "",
            ),
            ("PUSH_CONCURRENCY", self.push_concurrency as u64, 1_024, ""),
            ("PUSH_LEASE_SECS", self.push_lease_secs, DAY, " s"),
            ("PULL_LEASE_SECS", self.pull_lease_secs, DAY, " s"),
            ("PUSH_RETRY_BASE_MS", self.push_retry_base_ms, 3_600_000, " ms"),
            ("PUSH_RETRY_MAX_SECS", self.push_retry_max_secs, 7 * DAY, " s"),
            (
                "USER_BREAKER_FAILURES",
                u64::from(self.user_breaker_failures),
                1_000_000,
                "",
            ),
            ("USER_BREAKER_COOLDOWN_SECS", self.user_breaker_cooldown_secs, DAY, " s"),
            ("PULL_DEBOUNCE_MS", self.pull_debounce_ms, 60_000, " ms"),
            (
                "FULL_SYNC_WINDOW_DAYS",
                u64::from(self.full_sync_window_days),
                3_650,
                " days",
            ),
            ("CHANNEL_TTL_SECS", self.channel_ttl_secs, 30 * DAY, " s"),
            (
                "CHANNEL_RENEW_BEFORE_SECS",
                self.channel_renew_before_secs,
                30 * DAY,
                " s",
            ),
            (
                "SLOT_BREAKER_ALTERNATIONS",
                u64::from(self.slot_breaker_alternations),
                1_000_000,
                "",
            ),
            ("SLOT_BREAKER_WINDOW_SECS", self.slot_breaker_window_secs, DAY, " s"),
            ("MASS_DELETE_MIN", self.mass_delete_min, 1_000_000, ""),
            ("MASS_DELETE_PERCENT", self.mass_delete_percent, 100, " (percent)"),
        ] {
            if value > max {
                return Err(ConfigError {
                    variable,
                    problem: format!("`{value}` is out of range: at most {max}{unit}"),
                });
            }
        }
        Ok(())
    }

    /// The admin token; only valid after [`Settings::validate`].
    pub fn admin_token(&self) -> &str {
        self.admin_token.as_deref().unwrap_or_default()
    }

    /// The push retry schedule.
    pub fn push_backoff(&self) -> crate::domain::Backoff {
        crate::domain::Backoff {
            base: std::time::Duration::from_millis(self.push_retry_base_ms),
            cap: std::time::Duration::from_secs(self.push_retry_max_secs),
        }
    }

    /// Every user's sync settings until they choose otherwise.
    pub fn sync_defaults(&self) -> SyncSettings {
        SyncSettings {
            import: self.import_google_events,
            filter: ImportFilter {
                skip_free: self.import_skip_free,
                skip_private: self.import_skip_private,
                skip_declined: self.import_skip_declined,
                types: self.import_event_types.clone(),
            },
            conflict_policy: self.conflict_policy,
            full_sync_window_days: self.full_sync_window_days,
        }
    }

    /// The server secret; only valid after [`Settings::validate`].
    pub fn secret_key(&self) -> &[u8] {
        self.secret_key.as_deref().unwrap_or_default().as_bytes()
    }
}

/// A secret made of fewer than 8 distinct characters is a placeholder, not randomness.
/// Reads `WEBHOOK_RETRY_SCHEDULE`: seconds, comma-separated, each above 0 and at most a day.
fn parse_retry_schedule(raw: &str) -> Result<RetrySchedule, String> {
    RetrySchedule::parse(raw)
}

/// Reads `CONFLICT_POLICY` once, at startup: an unknown spelling stops the start with the
/// ones accepted.
fn parse_conflict_policy(raw: &str) -> Result<ConflictPolicy, String> {
    raw.parse()
        .map_err(|_| format!("`{raw}` is not a conflict policy; use latest_wins, app_wins or google_wins"))
}

fn is_low_entropy(secret: &str) -> bool {
    let distinct: std::collections::BTreeSet<char> = secret.chars().collect();
    distinct.len() < 8
}

fn check_url(variable: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        _ => Err(ConfigError {
            variable,
            problem: format!("`{value}` is not an http(s) URL"),
        }),
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("bind_addr", &self.bind_addr)
            .field("public_base_url", &self.public_base_url)
            .field("admin_token", &redacted(&self.admin_token))
            .field("secret_key", &redacted(&self.secret_key))
            .field("google_client_id", &self.google_client_id)
            .field("google_client_secret", &redacted(&self.google_client_secret))
            .field("oauth_redirect_uri", &self.oauth_redirect_uri)
            .field("google_emulator_url", &self.google_emulator_url)
            .field("return_to_origins", &self.return_to_origins)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("google_user_calls_per_minute", &self.google_user_calls_per_minute)
            .field("google_calls_per_minute", &self.google_calls_per_minute)
            .field("conflict_policy", &self.conflict_policy)
            .field("push_concurrency", &self.push_concurrency)
            .field("push_per_user_in_flight", &self.push_per_user_in_flight)
            .field("push_retry_base_ms", &self.push_retry_base_ms)
            .field("push_lease_secs", &self.push_lease_secs)
            .field("pull_lease_secs", &self.pull_lease_secs)
            .field("push_retry_max_secs", &self.push_retry_max_secs)
            .field("user_breaker_failures", &self.user_breaker_failures)
            .field("user_breaker_cooldown_secs", &self.user_breaker_cooldown_secs)
            .field("deployment_id", &self.deployment_id)
            .field("pull_debounce_ms", &self.pull_debounce_ms)
            .field("full_sync_window_days", &self.full_sync_window_days)
            .field("import_google_events", &self.import_google_events)
            .field("import_event_types", &self.import_event_types)
            .field("import_skip_free", &self.import_skip_free)
            .field("import_skip_private", &self.import_skip_private)
            .field("import_skip_declined", &self.import_skip_declined)
            .field("channel_ttl_secs", &self.channel_ttl_secs)
            .field("channel_renew_before_secs", &self.channel_renew_before_secs)
            .field("slot_breaker_alternations", &self.slot_breaker_alternations)
            .field("slot_breaker_window_secs", &self.slot_breaker_window_secs)
            .field("mass_delete_guard", &self.mass_delete_guard)
            .field("mass_delete_min", &self.mass_delete_min)
            .field("mass_delete_percent", &self.mass_delete_percent)
            .field("schedule_renew_channels", &self.schedule_renew_channels)
            .field("schedule_fallback_sync", &self.schedule_fallback_sync)
            .field("fallback_interval_secs", &self.fallback_interval_secs)
            .field("fallback_quiet_factor", &self.fallback_quiet_factor)
            .field("fallback_concurrency", &self.fallback_concurrency)
            .field("schedule_retry_pushes", &self.schedule_retry_pushes)
            .field("schedule_refresh_tokens", &self.schedule_refresh_tokens)
            .field("scheduler_enabled", &self.scheduler_enabled)
            .field("log_format", &self.log_format)
            .finish()
    }
}

/// Hides a password embedded in a database URL.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        settings: Settings,
    }

    fn parse(args: &[&str]) -> Settings {
        let mut all = vec!["slotsync"];
        all.extend_from_slice(args);
        Wrapper::try_parse_from(all).unwrap().settings
    }

    #[test]
    fn a_bad_schedule_names_its_variable() {
        let mut s = parse(&[
            "--admin-token",
            "0123456789abcdefgh",
            "--secret-key",
            "0123456789abcdefghijklmnopqrstuvwxyz",
        ]);
        assert!(s.validate().is_ok(), "the default schedules are valid");
        s.schedule_fallback_sync = "every quarter hour".into();
        assert_eq!(s.validate().unwrap_err().variable, "SCHEDULE_FALLBACK_SYNC");
    }

    #[test]
    fn missing_admin_token_names_the_variable() {
        let mut s = parse(&["--secret-key", "0123456789abcdefghijklmnopqrstuvwxyz"]);
        s.admin_token = None;
        let err = s.validate().unwrap_err();
        assert_eq!(err.variable, "ADMIN_TOKEN");
        assert!(err.problem.contains("not set"));
    }

    #[test]
    fn short_or_repetitive_secret_key_is_weak() {
        for weak in ["short", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
            let s = parse(&["--admin-token", "0123456789abcdefgh", "--secret-key", weak]);
            let err = s.validate().unwrap_err();
            assert_eq!(err.variable, "SECRET_KEY");
            assert!(err.problem.contains("too weak"), "{}", err.problem);
        }
    }

    #[test]
    fn good_secrets_pass_and_debug_hides_them() {
        let s = parse(&[
            "--admin-token",
            "0123456789abcdefgh",
            "--secret-key",
            "0123456789abcdefghijklmnopqrstuvwxyz",
        ]);
        s.validate().unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("0123456789abcdefgh"));
        assert!(shown.contains("<redacted>"));
    }

    fn valid() -> Settings {
        parse(&[
            "--admin-token",
            "0123456789abcdefgh",
            "--secret-key",
            "0123456789abcdefghijklmnopqrstuvwxyz",
        ])
    }

    #[test]
    fn durations_and_limits_out_of_range_name_their_variable_instead_of_overflowing() {
        let mut s = valid();
        s.push_lease_secs = u64::MAX;
        let err = s.validate().unwrap_err();
        assert_eq!(err.variable, "PUSH_LEASE_SECS");
        assert!(err.problem.contains("at most 86400 s"), "{}", err.problem);
        let mut s = valid();
        s.channel_ttl_secs = 365 * 86_400;
        assert_eq!(s.validate().unwrap_err().variable, "CHANNEL_TTL_SECS");
        let mut s = valid();
        s.mass_delete_percent = 101;
        assert_eq!(s.validate().unwrap_err().variable, "MASS_DELETE_PERCENT");
        let mut s = valid();
        s.push_retry_base_ms = 0;
        assert_eq!(s.validate().unwrap_err().variable, "PUSH_RETRY_BASE_MS");
    }

    #[test]
    fn public_base_url_must_be_https_unless_the_emulator_is_used() {
        let mut s = valid();
        s.public_base_url = Some("http://sync.example.com".into());
        let err = s.validate().unwrap_err();
        assert_eq!(err.variable, "PUBLIC_BASE_URL");
        assert!(err.problem.contains("https"), "{}", err.problem);
        s.public_base_url = Some("https://sync.example.com".into());
        s.validate().unwrap();
        s.public_base_url = Some("http://127.0.0.1:8080".into());
        s.google_emulator_url = Some("http://127.0.0.1:8085".into());
        s.validate().unwrap();
    }
}
