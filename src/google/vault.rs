//! The token vault: hands out a user's Google access token, refreshing it when less than
//! 60 s remain — one refresh per user at a time, however many calls wait. It sits behind
//! google-apis-common's `GetToken`, so `CalendarHub` asks it for tokens on every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use std::future::Future;
use std::pin::Pin;

use google_calendar3::common::GetToken;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::oauth::{OAuthClient, OAuthError};
use crate::crypto::{Keys, Secret};
use crate::domain::{AuditKind, ConnectionStatus, UserId};
use crate::store::{self, connections, StoreError};

/// Refresh when fewer than this many seconds of validity remain.
pub const REFRESH_MARGIN_SECS: i64 = 60;
/// How long a decrypted token is handed out from memory before the connection is read
/// again. Bounds how long another instance may keep using the token of a connection that
/// was re-authorized (possibly with another Google account) here; this instance forgets it
/// at once.
pub const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(15);

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The user has no Google connection (or disconnected).
    #[error("the user has not connected a Google account")]
    NotConnected,
    /// Google no longer accepts the refresh token: the user must connect again.
    #[error("Google no longer accepts this connection: the user must reconnect")]
    NeedsReauth,
    /// Google refuses the deployment's OAuth client (`invalid_client`, `deleted_client`):
    /// the deployment is degraded; no refresh is asked for until the probe finds the
    /// client accepted again (`client_health.rs`).
    #[error("Google refuses this deployment's OAuth client ({0}); pushes and pulls wait until it is fixed")]
    ClientBroken(String),
    /// OAuth is not configured, or Google could not be reached.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// The stored tokens cannot be decrypted (SECRET_KEY changed?).
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A decrypted access token, its expiry, and when it was read from the database.
type CachedToken = (String, chrono::DateTime<Utc>, std::time::Instant);

/// Tokens of every user, stored encrypted in `google_connections`.
pub struct TokenVault {
    db: DatabaseConnection,
    keys: Keys,
    oauth: Result<OAuthClient, &'static str>,
    refresh_locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Decrypted access tokens and their expiry, so a call does not read and decrypt the
    /// connection each time. Cleared for a user whenever their tokens change here.
    cache: Mutex<HashMap<Uuid, CachedToken>>,
}

impl TokenVault {
    /// A vault over `db`; `oauth` is the configured client or the name of the missing setting.
    pub fn new(db: DatabaseConnection, keys: Keys, oauth: Result<OAuthClient, &'static str>) -> Self {
        Self {
            db,
            keys,
            oauth,
            refresh_locks: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, user: Uuid) -> Option<String> {
        let margin = Utc::now() + Duration::seconds(REFRESH_MARGIN_SECS);
        let cache = self.cache.lock().expect("token cache poisoned");
        cache
            .get(&user)
            .filter(|(_, exp, read_at)| *exp > margin && read_at.elapsed() < CACHE_TTL)
            .map(|(token, _, _)| token.clone())
    }

    /// Caches a token, unless a newer one (later expiry) is cached already: a reader that
    /// fetched the old token just before a refresh must not put it back.
    fn remember(&self, user: Uuid, token: &str, expires_at: chrono::DateTime<Utc>) {
        let mut cache = self.cache.lock().expect("token cache poisoned");
        match cache.get(&user) {
            Some((_, cached, _)) if *cached > expires_at => {}
            _ => {
                cache.insert(user, (token.to_owned(), expires_at, std::time::Instant::now()));
            }
        }
    }

    /// Forgets the user's cached token (the connection changed: disconnected, stopped,
    /// refused). The next call reads the connection again.
    pub fn forget(&self, user: UserId) {
        self.cache.lock().expect("token cache poisoned").remove(&user.0);
    }

    fn lock_for(&self, user: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refresh_locks.lock().expect("refresh lock map poisoned");
        locks.entry(user).or_default().clone()
    }

    /// A valid access token for `user`, refreshed first if it is about to expire.
    #[tracing::instrument(skip_all, fields(user_id = %user), err)]
    pub async fn access_token(&self, user: UserId) -> Result<String, VaultError> {
        if let Some(token) = self.cached(user.0) {
            return Ok(token);
        }
        if let Some(token) = self.fresh_token(user).await? {
            return Ok(token);
        }
        let lock = self.lock_for(user.0);
        let _guard = lock.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(token) = self.fresh_token(user).await? {
            return Ok(token);
        }
        self.refresh(user).await
    }

    /// The stored token if it is valid for more than the margin.
    async fn fresh_token(&self, user: UserId) -> Result<Option<String>, VaultError> {
        let conn = self.active_connection(user).await?;
        let margin = Utc::now() + Duration::seconds(REFRESH_MARGIN_SECS);
        match (&conn.access_token_enc, conn.token_expires_at) {
            (Some(enc), Some(exp)) if exp > margin => {
                let token = self.keys.decrypt(enc, user.0, Secret::AccessToken)?;
                self.remember(user.0, &token, exp);
                Ok(Some(token))
            }
            _ => Ok(None),
        }
    }

    async fn active_connection(&self, user: UserId) -> Result<connections::Connection, VaultError> {
        let conn = connections::find(&self.db, user)
            .await?
            .ok_or(VaultError::NotConnected)?;
        match conn.status {
            // Tokens of a connection that cannot sync right now are still good for setting
            // it right (picking a calendar) or for leaving (deleting slotsync's events).
            ConnectionStatus::Active
            | ConnectionStatus::CalendarMissing
            | ConnectionStatus::MissingScopes
            | ConnectionStatus::Disconnecting => Ok(conn),
            ConnectionStatus::NeedsReauth => Err(VaultError::NeedsReauth),
            _ => Err(VaultError::NotConnected),
        }
    }

    /// Refreshes after Google refused `rejected` (a 401): unless another caller already
    /// replaced that token, asks for a new one. Returns the token to retry with.
    #[tracing::instrument(skip_all, fields(user_id = %user), err)]
    pub async fn refresh_rejected(&self, user: UserId, rejected: &str) -> Result<String, VaultError> {
        self.forget(user);
        let lock = self.lock_for(user.0);
        let _guard = lock.lock().await;
        let conn = self.active_connection(user).await?;
        if let Some(enc) = &conn.access_token_enc {
            let current = self.keys.decrypt(enc, user.0, Secret::AccessToken)?;
            if current != rejected {
                return Ok(current);
            }
        }
        self.refresh(user).await
    }

    /// Refreshes the user's token now unless it stays valid for longer than `ahead` (the
    /// refresh job calls this; concurrent callers share one refresh).
    #[tracing::instrument(skip_all, fields(user_id = %user), err)]
    pub async fn refresh_expiring(&self, user: UserId, ahead: Duration) -> Result<(), VaultError> {
        let lock = self.lock_for(user.0);
        let _guard = lock.lock().await;
        let conn = self.active_connection(user).await?;
        if conn.token_expires_at.is_some_and(|exp| exp > Utc::now() + ahead) {
            return Ok(());
        }
        self.refresh(user).await.map(|_| ())
    }

    /// Refreshes now (the caller holds the user's refresh lock).
    async fn refresh(&self, user: UserId) -> Result<String, VaultError> {
        let oauth = self.oauth.as_ref().map_err(|v| OAuthError::NotConfigured(v))?;
        // A broken client is asked nothing (the probe asks, once per interval): callers
        // retrying would only hammer the token endpoint.
        if let Some(degraded) = oauth.health().degraded() {
            return Err(VaultError::ClientBroken(degraded.reason));
        }
        let conn = self.active_connection(user).await?;
        let Some(refresh_enc) = conn.refresh_token_enc else {
            return Err(self.mark_needs_reauth(user, "no refresh token stored").await);
        };
        let refresh_token = self.keys.decrypt(&refresh_enc, user.0, Secret::RefreshToken)?;
        match oauth.refresh(&refresh_token).await {
            Ok(set) => {
                let new_refresh = set
                    .refresh_token
                    .as_deref()
                    .map(|r| self.keys.encrypt(r, user.0, Secret::RefreshToken));
                connections::save_refreshed_token(
                    &self.db,
                    user,
                    self.keys.encrypt(&set.access_token, user.0, Secret::AccessToken),
                    set.expires_at,
                    new_refresh,
                )
                .await?;
                tracing::info!("access token refreshed");
                self.remember(user.0, &set.access_token, set.expires_at);
                Ok(set.access_token)
            }
            Err(OAuthError::InvalidGrant(why)) => Err(self.mark_needs_reauth(user, &why).await),
            // Not the user's grant: nobody is marked `needs_reauth` (the OAuth client noted
            // the refusal in its health).
            Err(OAuthError::ClientBroken(why)) => Err(VaultError::ClientBroken(why)),
            Err(e) => Err(e.into()),
        }
    }

    async fn mark_needs_reauth(&self, user: UserId, why: &str) -> VaultError {
        self.forget(user);
        let message = format!("Google refused the credentials ({why}); reconnect the Google account");
        tracing::warn!(user_id = %user, "{message}");
        let status = connections::mark_needs_reauth(&self.db, user, message.clone()).await;
        let audit = store::audit::record(
            &self.db,
            user,
            None,
            AuditKind::NeedsReauth,
            serde_json::json!({ "reason": why }),
        )
        .await;
        match status.and(audit) {
            Ok(()) => VaultError::NeedsReauth,
            Err(e) => e.into(),
        }
    }

    /// A `GetToken` for `user`, to hand to `CalendarHub`.
    pub fn for_user(self: &Arc<Self>, user: UserId) -> UserToken {
        UserToken {
            vault: Arc::clone(self),
            user,
        }
    }
}

/// Seals again, bound to their owner and purpose, the stored secrets still in the first
/// format (encrypted without associated data): the data step of the upgrade to it, run
/// at every start after the schema migrations (it needs `SECRET_KEY`, which migrations do
/// not have). Idempotent; a value that cannot be read is left as it is (and logged).
/// Returns how many values were sealed again.
pub async fn reseal_legacy(db: &DatabaseConnection, keys: &Keys) -> Result<u64, StoreError> {
    const LEGACY: &str = "v1:";
    let mut resealed = 0;
    for conn in connections::with_sealed_prefix(db, LEGACY).await? {
        for (refresh, value, what) in [
            (false, &conn.access_token_enc, Secret::AccessToken),
            (true, &conn.refresh_token_enc, Secret::RefreshToken),
        ] {
            let Some(old) = value.as_deref().filter(|v| Keys::is_legacy(v)) else {
                continue;
            };
            match keys.decrypt_legacy(old) {
                Ok(plain) => {
                    let new = keys.encrypt(&plain, conn.user_id, what);
                    connections::replace_sealed(db, UserId(conn.user_id), refresh, old, new).await?;
                    resealed += 1;
                }
                Err(e) => {
                    tracing::warn!(user_id = %conn.user_id, error = %e, "a stored token cannot be read; the user must reconnect")
                }
            }
        }
    }
    for pending in store::oauth_states::with_sealed_prefix(db, LEGACY).await? {
        if let Ok(plain) = keys.decrypt_legacy(&pending.code_verifier_enc) {
            let new = keys.encrypt(&plain, pending.user_id, Secret::PkceVerifier);
            store::oauth_states::replace_sealed(db, &pending.nonce, &pending.code_verifier_enc, new).await?;
            resealed += 1;
        }
    }
    if resealed > 0 {
        tracing::info!(
            resealed,
            "stored secrets sealed again, bound to their owner and purpose"
        );
    }
    Ok(resealed)
}

/// google-apis-common's (private) `GetToken` output type, spelled out.
type GetTokenOutput<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>> + Send + 'a>>;

/// One user's view of the vault, as google-apis-common's `GetToken`.
#[derive(Clone)]
pub struct UserToken {
    vault: Arc<TokenVault>,
    user: UserId,
}

impl GetToken for UserToken {
    fn get_token<'a>(&'a self, _scopes: &'a [&str]) -> GetTokenOutput<'a> {
        Box::pin(async move {
            self.vault
                .access_token(self.user)
                .await
                .map(Some)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
    }
}
