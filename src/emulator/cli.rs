//! `slotsync emulator`: run the emulator until Ctrl-C.

use super::config::{
    EmulatorConfig, OAuthClient, QuotaConfig, QuotaStatus, DEFAULT_BIND, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};
use super::faults::FaultPlan;
use super::Emulator;
use std::net::SocketAddr;
use std::time::Duration;

/// Options of `slotsync emulator`.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = DEFAULT_BIND, env = "EMULATOR_BIND")]
    pub bind: SocketAddr,
    /// Seed for every random choice (ids, tokens, injected faults); random when absent.
    #[arg(long)]
    pub seed: Option<u64>,
    /// OAuth client id of the registered client.
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// OAuth client secret of the registered client.
    #[arg(long, default_value = DEFAULT_CLIENT_SECRET)]
    pub client_secret: String,
    /// Redirect URI accepted for the client (repeatable; replaces the two defaults).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, default_value_t = 3599)]
    pub access_token_lifetime_secs: u64,
    /// Push channel ttl when `events.watch` names none, in seconds.
    #[arg(long, default_value_t = 604_800)]
    pub channel_ttl_secs: u64,
    /// Upper bound on any channel ttl, in seconds.
    #[arg(long, default_value_t = 2_592_000)]
    pub channel_ttl_cap_secs: u64,
    /// Per-user Calendar API requests allowed in any 60 s window (no quota when absent).
    #[arg(long)]
    pub quota_per_minute: Option<u32>,
    /// Status answered past the quota: 403 (userRateLimitExceeded) or 429.
    #[arg(long, value_enum, default_value = "403")]
    pub quota_status: QuotaStatus,
    /// Public base URL written into the discovery document and resource URIs.
    #[arg(long)]
    pub public_base_url: Option<String>,
    /// Initial fault plan as JSON (same shape as `PUT /_emulator/faults`).
    #[arg(long)]
    pub faults: Option<String>,
}

impl EmulatorArgs {
    /// The configuration these options describe.
    pub fn to_config(&self) -> EmulatorConfig {
        let defaults = OAuthClient::default_dev_client();
        let client = OAuthClient {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            redirect_uris: if self.redirect_uris.is_empty() {
                defaults.redirect_uris
            } else {
                self.redirect_uris.clone()
            },
        };
        EmulatorConfig {
            bind: self.bind,
            seed: self.seed,
            clients: vec![client],
            access_token_lifetime: Duration::from_secs(self.access_token_lifetime_secs),
            channel_ttl_default: Duration::from_secs(self.channel_ttl_secs),
            channel_ttl_cap: Duration::from_secs(self.channel_ttl_cap_secs),
            quota: self.quota_per_minute.map(|n| QuotaConfig {
                per_user_per_minute: n,
                status: self.quota_status,
            }),
            public_base_url: self.public_base_url.clone(),
            ..EmulatorConfig::default()
        }
    }
}

/// Starts the emulator, prints where it listens and the OAuth client, runs until Ctrl-C.
pub async fn run_cli(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = args.to_config();
    let plan = match &args.faults {
        Some(json) => Some(FaultPlan::from_json(serde_json::from_str(json)?)?),
        None => None,
    };
    let client = config.clients[0].clone();
    let handle = Emulator::start(config).await?;
    if let Some(plan) = plan {
        handle.shared.state.lock().faults = plan;
    }
    let base = handle.base_url();
    println!("Google emulator listening on {base}");
    println!("  OAuth authorize:  {base}/o/oauth2/v2/auth");
    println!("  OAuth token:      {base}/token");
    println!("  Calendar API:     {}", handle.calendar_base_url());
    println!("  Control API:      {base}/_emulator/");
    println!("  client_id:        {}", client.client_id);
    println!("  client_secret:    {}", client.client_secret);
    for uri in &client.redirect_uris {
        println!("  redirect_uri:     {uri}");
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
