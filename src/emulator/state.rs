//! The emulator's in-memory world: users, OAuth grants, calendars, events and channels.

use super::config::{EmulatorConfig, OAuthClient};
use super::consent::{union, ConsentSetting};
use super::faults::FaultPlan;
use super::meetings::SentUpdate;
use super::model::Event;
use super::stats::Stats;
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// State shared by every handler.
pub struct Shared {
    /// The configuration the emulator was started with.
    pub config: EmulatorConfig,
    /// Root URL used in discovery documents and resource URIs (no trailing slash).
    pub base_url: String,
    /// HTTP client delivering push notifications.
    pub http: reqwest::Client,
    /// Everything mutable.
    pub state: Mutex<State>,
    /// Set on shutdown: pending notifications are abandoned.
    pub stopped: AtomicBool,
    /// Wakes the notification batch scheduler (a new batch, or shutdown).
    pub batch_wake: tokio::sync::Notify,
}

/// A Google account.
#[derive(Debug, Clone)]
pub struct User {
    /// Email, also the id of the primary calendar.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Stable numeric subject id.
    pub sub: String,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub struct AuthCode {
    /// Client the code was issued to.
    pub client_id: String,
    /// Redirect URI used in the authorization request.
    pub redirect_uri: String,
    /// Granted user.
    pub email: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// PKCE challenge and method (`S256` | `plain`).
    pub challenge: Option<(String, String)>,
    /// Whether a refresh token is issued (`access_type=offline`).
    pub offline: bool,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Set on first exchange; reuse answers `invalid_grant`.
    pub used: bool,
}

/// An access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// Token owner.
    pub email: String,
    /// Client it was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// The refresh token of the same grant, if any.
    pub refresh_token: Option<String>,
    /// Revoked tokens answer 401.
    pub revoked: bool,
}

/// A refresh token.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// Token owner.
    pub email: String,
    /// Client it was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Revoked tokens answer `invalid_grant`.
    pub revoked: bool,
}

/// A stored event with its position in the calendar's change log.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The resource as Google would return it.
    pub event: Event,
    /// Calendar change sequence number of the last modification.
    pub change_seq: u64,
    /// Set on an exception (a stored instance) that no longer belongs to its series: the
    /// master was deleted, or changed so that its original start is no longer an
    /// occurrence. It stays as a tombstone for incremental sync but no longer overrides
    /// the occurrence of that id.
    pub detached: bool,
}

/// A calendar and its events.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Calendar id (email for primary calendars).
    pub id: String,
    /// Owner's email.
    pub owner: String,
    /// Title.
    pub summary: String,
    /// Description.
    pub description: Option<String>,
    /// IANA time zone.
    pub time_zone: String,
    /// Etag of the calendar resource.
    pub etag: String,
    /// Whether this is the owner's primary calendar.
    pub primary: bool,
    /// Sync-token epoch; bumping it invalidates every earlier token.
    pub epoch: u32,
    /// Last change sequence number handed out.
    pub seq: u64,
    /// Stable resource id reported to push channels.
    pub resource_id: String,
    /// Last modification time of any event.
    pub updated: DateTime<Utc>,
    /// Events by id, deleted ones included.
    pub events: BTreeMap<String, StoredEvent>,
}

/// A push notification channel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Channel {
    /// Channel id chosen by the watcher.
    pub id: String,
    /// Resource id of the watched calendar.
    pub resource_id: String,
    /// `X-Goog-Resource-URI`.
    pub resource_uri: String,
    /// Watched calendar.
    pub calendar_id: String,
    /// Creator (only the creator may stop it).
    pub owner: String,
    /// Delivery address.
    pub address: String,
    /// Channel token, if set.
    pub token: Option<String>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Last message number used.
    pub message_number: u64,
    /// Set by `channels.stop`.
    pub stopped: bool,
}

impl Channel {
    /// Whether notifications may still be sent.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        !self.stopped && now < self.expires_at
    }
}

/// Everything mutable, behind one mutex.
pub struct State {
    /// Seeded random source for every random choice.
    pub rng: StdRng,
    /// Registered OAuth clients by id.
    pub clients: HashMap<String, OAuthClient>,
    /// Users by email.
    pub users: BTreeMap<String, User>,
    /// Calendars by id.
    pub calendars: BTreeMap<String, Calendar>,
    /// Deleted calendar ids (their ids stay taken).
    pub deleted_calendars: Vec<String>,
    /// Authorization codes.
    pub codes: HashMap<String, AuthCode>,
    /// Access tokens.
    pub access_tokens: HashMap<String, AccessToken>,
    /// Refresh tokens.
    pub refresh_tokens: HashMap<String, RefreshToken>,
    /// Channels by id.
    pub channels: BTreeMap<String, Channel>,
    /// Request and notification counters.
    pub stats: Stats,
    /// Active fault plan.
    pub faults: FaultPlan,
    /// Per-user request times for the quota window.
    pub quota_windows: HashMap<String, VecDeque<Instant>>,
    /// What the consent screen answers.
    pub consent: ConsentSetting,
    /// Scopes each account granted each OAuth client and still holds, by
    /// `(email, client_id)`; revocation forgets the entry.
    pub grants: HashMap<(String, String), Vec<String>>,
    /// What each write's `sendUpdates` would have emailed, oldest first.
    pub sent_updates: Vec<SentUpdate>,
    /// 404 answers given per `(calendar, event)` under the `transient_404` fault (reset
    /// with the fault plan).
    pub transient_404_hits: HashMap<(String, String), u32>,
    /// Calendars with a notification batch open, by the instant it is due (the batch
    /// scheduler in `batch.rs` sends them).
    pub pending_batches: BTreeMap<String, std::time::Instant>,
    last_tick: DateTime<Utc>,
}

const BASE32HEX: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl State {
    /// A fresh world holding only the configured OAuth clients.
    pub fn new(config: &EmulatorConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            rng,
            clients: config
                .clients
                .iter()
                .map(|c| (c.client_id.clone(), c.clone()))
                .collect(),
            users: BTreeMap::new(),
            calendars: BTreeMap::new(),
            deleted_calendars: Vec::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            channels: BTreeMap::new(),
            stats: Stats::default(),
            faults: FaultPlan::default(),
            quota_windows: HashMap::new(),
            consent: ConsentSetting::default(),
            grants: HashMap::new(),
            sent_updates: Vec::new(),
            transient_404_hits: HashMap::new(),
            pending_batches: BTreeMap::new(),
            last_tick: DateTime::<Utc>::MIN_UTC,
        }
    }

    /// Forgets every user, grant, calendar, channel, counter and fault; keeps OAuth
    /// clients (they are project configuration) and the random stream.
    pub fn reset(&mut self) {
        self.users.clear();
        self.calendars.clear();
        self.deleted_calendars.clear();
        self.codes.clear();
        self.access_tokens.clear();
        self.refresh_tokens.clear();
        self.channels.clear();
        self.stats = Stats::default();
        self.faults = FaultPlan::default();
        self.quota_windows.clear();
        self.consent = ConsentSetting::default();
        self.grants.clear();
        self.sent_updates.clear();
        self.transient_404_hits.clear();
        self.pending_batches.clear();
    }

    /// The scopes `email` granted `client_id` earlier and still holds (empty if none).
    pub fn standing_grant(&self, email: &str, client_id: &str) -> Vec<String> {
        self.grants
            .get(&(email.to_owned(), client_id.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Adds `scopes` to what `email` granted `client_id`.
    pub fn record_grant(&mut self, email: &str, client_id: &str, scopes: &[String]) {
        let entry = self.grants.entry((email.to_owned(), client_id.to_owned())).or_default();
        *entry = union(entry, scopes);
    }

    /// Forgets what `email` granted `client_id` (or every client, when `None`).
    pub fn forget_grants(&mut self, email: &str, client_id: Option<&str>) {
        self.grants
            .retain(|(e, c), _| e != email || client_id.is_some_and(|id| id != c));
    }

    /// A random string over `alphabet`.
    pub fn random_string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.rng.gen_range(0..alphabet.len())] as char)
            .collect()
    }

    /// A new event id: 26 base32hex characters, like Google's.
    pub fn new_event_id(&mut self) -> String {
        self.random_string(BASE32HEX, 26)
    }

    /// A new opaque token with a Google-like prefix.
    pub fn new_token(&mut self, prefix: &str) -> String {
        format!("{prefix}{}", self.random_string(TOKEN_CHARS, 64))
    }

    /// A new lowercase alphanumeric id.
    pub fn new_alnum(&mut self, len: usize) -> String {
        self.random_string(ALNUM, len)
    }

    /// The current time, strictly later (by at least 1 ms) than the previous tick, so
    /// `updated` and etags change on every modification.
    pub fn tick(&mut self) -> DateTime<Utc> {
        let now = Utc::now();
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let next = if now <= self.last_tick {
            self.last_tick + ChronoDuration::milliseconds(1)
        } else {
            now
        };
        self.last_tick = next;
        next
    }

    /// Returns the user, creating it (with its primary calendar) when unknown.
    pub fn ensure_user(&mut self, email: &str, name: Option<&str>) -> User {
        if let Some(user) = self.users.get(email) {
            return user.clone();
        }
        let sub = loop {
            let sub: String = (0..21)
                .map(|i| {
                    let d = self.rng.gen_range(if i == 0 { 1 } else { 0 }..10u8);
                    (b'0' + d) as char
                })
                .collect();
            // Google's `sub` identifies one account for good: never hand one out twice.
            if !self.users.values().any(|u| u.sub == sub) {
                break sub;
            }
        };
        let user = User {
            email: email.to_owned(),
            name: name
                .map(str::to_owned)
                .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned()),
            sub,
        };
        self.users.insert(email.to_owned(), user.clone());
        self.create_calendar(email, email.to_owned(), email.to_owned(), None, None, true);
        user
    }

    /// Creates a calendar owned by `owner`.
    pub fn create_calendar(
        &mut self,
        owner: &str,
        id: String,
        summary: String,
        description: Option<String>,
        time_zone: Option<String>,
        primary: bool,
    ) -> &Calendar {
        let now = self.tick();
        let resource_id = self.random_string(TOKEN_CHARS, 27);
        let calendar = Calendar {
            id: id.clone(),
            owner: owner.to_owned(),
            summary,
            description,
            time_zone: time_zone.unwrap_or_else(|| "UTC".to_owned()),
            etag: etag_for(now),
            primary,
            epoch: 0,
            seq: 0,
            resource_id,
            updated: now,
            events: BTreeMap::new(),
        };
        self.calendars.insert(id.clone(), calendar);
        &self.calendars[&id]
    }

    /// Stamps a modification (etag, `updated`, change sequence) and stores the event;
    /// `detached` as on [`StoredEvent`]. Returns the stored resource.
    pub fn store_event(&mut self, cal_id: &str, mut event: Event, detached: bool) -> Event {
        let now = self.tick();
        event.etag = etag_for(now);
        event.updated = Some(rfc3339(now));
        if event.created.is_none() {
            event.created = event.updated.clone();
        }
        let Some(cal) = self.calendars.get_mut(cal_id) else {
            return event;
        };
        cal.seq += 1;
        cal.updated = now;
        cal.events.insert(
            event.id.clone(),
            StoredEvent {
                event: event.clone(),
                change_seq: cal.seq,
                detached,
            },
        );
        event
    }

    /// Resolves `primary` and percent-encoded ids to a calendar id owned by `email`.
    pub fn resolve_calendar_id(&self, email: &str, raw: &str) -> Option<String> {
        let id = if raw == "primary" { email } else { raw };
        match self.calendars.get(id) {
            Some(cal) if cal.owner == email => Some(cal.id.clone()),
            _ => None,
        }
    }
}

/// An etag (a quoted decimal string) derived from a modification time.
pub fn etag_for(at: DateTime<Utc>) -> String {
    format!("\"{}\"", at.timestamp_micros() * 2)
}

/// RFC 3339 with milliseconds and `Z`, as Google writes `updated`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Percent-decodes a path segment (`%40` → `@`).
pub fn decode_path(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}
