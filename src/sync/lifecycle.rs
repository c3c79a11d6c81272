//! What a completed authorization does to a user's slots. A connection's identity is its
//! home — (Google account, calendar) — and a reconnect is one of:
//! - a **continuation** (same account, same calendar): tokens replaced, the cached access
//!   token forgotten, paused slots resumed; nothing already in Google is pushed again;
//! - a **re-homing** (another account, or another calendar): in one transaction the
//!   connection moves to a new *home generation*, the sync token is dropped, held
//!   deletions are forgotten, and every live slot forgets its link and is queued for the
//!   new calendar; then the old channels are stopped and sync starts over there. A push or
//!   pull still running for the old home cannot record its outcome (every outcome write
//!   is conditional on the generation). Events left in the previous calendar stay there.
//! - a grant **without the calendar scope**: the tokens are kept, the connection is
//!   `missing_scopes`, the slots wait paused; the next full grant is compared with the
//!   home as it was.

use chrono::Utc;
use google_calendar3::api::Calendar;
use serde_json::json;

use super::connect::{initialize_sync, CalendarMode, ConnectOutcome, DEDICATED_CALENDAR_SUMMARY};
use super::context::SyncContext;
use super::home::{Home, MISSING_SCOPES_HINT};
use super::SyncError;
use crate::crypto::Secret;
use crate::domain::{AuditKind, ChangeKind, ChangeOrigin, ConnectionStatus, UserId};
use crate::google::hub::calendar_hub;
use crate::google::oauth::GoogleAccount;
use crate::store::{self, audit, changes, connections, held_deletions, sync_states};
use crate::sync::channels;

/// The calendar slots go to for `account` in `mode`: `primary`, or the user's dedicated
/// calendar in that account — the remembered one if `calendars.get` still finds it,
/// otherwise a new one (remembered for next time).
pub async fn calendar_for(
    state: &SyncContext,
    user: UserId,
    account: &GoogleAccount,
    mode: CalendarMode,
    access_token: &str,
) -> Result<String, SyncError> {
    if mode == CalendarMode::Primary {
        return Ok("primary".to_owned());
    }
    let key = Home::new(account, String::new())
        .account_key()
        .unwrap_or_else(|| "unknown-account".to_owned());
    let hub = calendar_hub(&state.endpoints, access_token.to_owned());
    if let Some(known) = connections::dedicated_calendar(&state.db, user, &key).await? {
        match hub.calendars().get(&known).doit().await {
            Ok(_) => return Ok(known),
            Err(e) => {
                let error = crate::google::GoogleError::from_client(e);
                if !matches!(error, crate::google::GoogleError::Gone(_)) {
                    return Err(SyncError::Calendar(format!(
                        "could not check the dedicated calendar {known}: {error}"
                    )));
                }
                tracing::info!(user_id = %user, calendar = %known, "the dedicated calendar is gone: creating another");
            }
        }
    }
    let calendar = Calendar {
        summary: Some(DEDICATED_CALENDAR_SUMMARY.to_owned()),
        ..Default::default()
    };
    let (_, created) = hub
        .calendars()
        .insert(calendar)
        .doit()
        .await
        .map_err(|e| SyncError::Calendar(e.to_string()))?;
    let id = created
        .id
        .ok_or_else(|| SyncError::Calendar("calendars.insert returned no id".into()))?;
    connections::remember_dedicated_calendar(&state.db, user, &key, &id).await?;
    Ok(id)
}

/// Stores the connection for `home` (granted `scopes`) and continues or re-homes as the
/// identity says; then initialises sync.
pub async fn settle_home(
    state: &SyncContext,
    new: connections::NewConnection,
    existing: Option<&connections::Connection>,
    home: &Home,
    scopes: &str,
) -> Result<(connections::Connection, ConnectOutcome), SyncError> {
    let user = new.user_id;
    let previous = existing.map(Home::of);
    let outcome = match &previous {
        None => ConnectOutcome::First,
        Some(p) if p.is_same(home) => ConnectOutcome::Continued,
        Some(p) => ConnectOutcome::Rehomed {
            from: p.clone(),
            slots_repushed: 0,
        },
    };
    let outcome = match outcome {
        ConnectOutcome::Rehomed { from, .. } => {
            let slots_repushed = rehome(state, new, &from, home).await?;
            ConnectOutcome::Rehomed { from, slots_repushed }
        }
        other => {
            // The connection and its log entry commit together.
            let txn = store::begin_write(&state.db).await.map_err(store::StoreError::from)?;
            connections::upsert(&txn, new).await?;
            audit::record(
                &txn,
                user,
                None,
                AuditKind::Connect,
                json!({ "home": home.describe(), "granted_scopes": scopes,
                        "continued": matches!(other, ConnectOutcome::Continued) }),
            )
            .await?;
            txn.commit().await.map_err(store::StoreError::from)?;
            crate::sync::feed::changed(user);
            other
        }
    };
    // The previous access token may belong to another account: never hand it out again.
    state.vault.forget(user);
    initialize_sync(state, user).await?;
    let connection = connections::find(&state.db, user)
        .await?
        .ok_or(SyncError::NoConnection)?;
    Ok((connection, outcome))
}

/// Moves the user's slots from `from` to `to` (see the module docs). Returns how many live
/// slots are queued for the new calendar.
async fn rehome(
    state: &SyncContext,
    new: connections::NewConnection,
    from: &Home,
    to: &Home,
) -> Result<u64, SyncError> {
    let user = new.user_id;
    let now = Utc::now();
    let txn = store::begin_write(&state.db).await.map_err(store::StoreError::from)?;
    connections::upsert(&txn, new).await?;
    let generation = connections::next_home(&txn, user).await?;
    let dropped = store::slots::drop_read_only(&txn, user, now).await?;
    let mut entries = Vec::new();
    for slot in &dropped {
        let detail = json!({ "reason": "rehome_read_only" });
        if let Some(entry) =
            changes::slot_entry(&txn, user, *slot, ChangeKind::SlotDeleted, ChangeOrigin::System, detail).await?
        {
            entries.push(entry);
        }
    }
    changes::append(&txn, user, entries, now).await?;
    let repushed = store::slots::rehome(&txn, user, generation, Some(&from.key()), &to.key(), now).await?;
    sync_states::reset_for_new_home(&txn, user).await?;
    let held_dropped = held_deletions::release(&txn, user, None).await?;
    audit::record(
        &txn,
        user,
        None,
        AuditKind::Rehome,
        json!({
            "from": from.describe(),
            "to": to.describe(),
            "home_generation": generation,
            "slots_repushed": repushed,
            "read_only_slots_dropped": dropped.len(),
            "held_deletions_dropped": held_dropped,
            "old_calendar_events": "left in place: slotsync does not delete them; \
                                    disconnect with delete_events=true before switching to remove them",
        }),
    )
    .await?;
    txn.commit().await.map_err(store::StoreError::from)?;
    tracing::info!(user_id = %user, generation, repushed, "re-homed to another account or calendar");
    // The old channels watch the old calendar: stop them (best effort at Google, always
    // refused from now on by the webhook).
    let stopped = channels::stop_all(state, user).await?;
    if !stopped.problems.is_empty() {
        tracing::info!(user_id = %user, problems = ?stopped.problems, "old channels could not all be stopped at Google; they expire by themselves");
    }
    Ok(repushed)
}

/// Records a grant lacking the calendar scope: tokens kept, connection `missing_scopes`,
/// live slots paused with the reason, channels stopped, logged.
pub async fn record_missing_scopes(
    state: &SyncContext,
    new: connections::NewConnection,
    missing: &[String],
) -> Result<connections::Connection, SyncError> {
    let user = new.user_id;
    let granted = new.granted_scopes.clone();
    let reason = format!("missing scopes: {}; {MISSING_SCOPES_HINT}", missing.join(" "));
    let txn = store::begin_write(&state.db).await.map_err(store::StoreError::from)?;
    let connection = connections::record_partial_grant(&txn, new, &reason).await?;
    let paused = store::slots::pause_all(&txn, user, &reason).await?;
    audit::record(
        &txn,
        user,
        None,
        AuditKind::MissingScopes,
        json!({ "granted_scopes": granted, "missing_scopes": missing, "slots_paused": paused, "reason": reason }),
    )
    .await?;
    txn.commit().await.map_err(store::StoreError::from)?;
    state.vault.forget(user);
    channels::stop_all(state, user).await?;
    Ok(connection)
}

/// `POST /auth/google/calendar`: moves the user's slots to another calendar of the
/// connected account with the tokens already held (after the calendar was deleted in
/// Google, or to switch between the primary and a dedicated calendar).
pub async fn pick_calendar(
    state: &SyncContext,
    user: UserId,
    mode: CalendarMode,
) -> Result<(connections::Connection, ConnectOutcome), SyncError> {
    let conn = connections::find(&state.db, user)
        .await?
        .ok_or(SyncError::NoConnection)?;
    if ![ConnectionStatus::Active, ConnectionStatus::CalendarMissing].contains(&conn.status) {
        return Err(SyncError::ConnectionUnusable(format!(
            "the Google connection is `{}`: connect again with GET /auth/google/authorize?calendar={}",
            conn.status,
            mode.as_str()
        )));
    }
    let access_token = state
        .vault
        .access_token(user)
        .await
        .map_err(|e| SyncError::ConnectionUnusable(format!("no usable Google token ({e}); connect again")))?;
    // Read again: getting the token may have refreshed and stored a new one.
    let conn = connections::find(&state.db, user)
        .await?
        .ok_or(SyncError::NoConnection)?;
    let account = GoogleAccount {
        sub: conn.google_sub.clone(),
        email: conn.google_email.clone(),
    };
    let calendar_id = calendar_for(state, user, &account, mode, &access_token).await?;
    let home = Home::new(&account, calendar_id.clone());
    let new = connections::NewConnection {
        user_id: user,
        google_email: conn.google_email.clone(),
        google_sub: conn.google_sub.clone(),
        calendar_id,
        access_token_enc: state.keys.encrypt(&access_token, user.0, Secret::AccessToken),
        refresh_token_enc: None,
        token_expires_at: conn.token_expires_at.unwrap_or_else(Utc::now),
        granted_scopes: conn.granted_scopes.clone(),
    };
    settle_home(state, new, Some(&conn), &home, &conn.granted_scopes).await
}
