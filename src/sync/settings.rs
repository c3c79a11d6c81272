//! A user's sync settings (`GET`/`PATCH /sync/settings`): what they chose over the
//! deployment's defaults. A change of what is imported (import on/off, the filter, the
//! window) drops the sync token in the transaction that stores it and then requests a
//! full sync: the new filter applies to every event in the window, and imports it now
//! excludes are unlinked (`plan.rs`). The conflict policy applies from the next decision.

use chrono::Utc;

use super::context::SyncContext;
use super::SyncError;
use crate::domain::{ChosenSettings, ConnectionStatus, SyncSettings, UserId};
use crate::store::{self, connections, sync_states};

/// A user's settings: what they chose, and what is in effect.
#[derive(Debug, Clone)]
pub struct SettingsView {
    pub chosen: ChosenSettings,
    pub effective: SyncSettings,
}

/// What changing the settings did.
#[derive(Debug, Clone)]
pub struct Changed {
    pub view: SettingsView,
    /// What is imported changed: a full sync was requested (it runs now when the user is
    /// connected, else with the next connection).
    pub full_sync_requested: bool,
}

/// `user`'s settings.
pub async fn current(ctx: &SyncContext, user: UserId) -> Result<SettingsView, SyncError> {
    let chosen = store::sync_settings::find(&ctx.db, user).await?;
    let effective = chosen.over(&ctx.settings.sync_defaults());
    Ok(SettingsView { chosen, effective })
}

/// Applies `edit` to what `user` chose, stores it, and requests a full sync when what is
/// imported changed.
#[tracing::instrument(skip_all, fields(user_id = %user), err)]
pub async fn change(
    ctx: &SyncContext,
    user: UserId,
    edit: impl FnOnce(&mut ChosenSettings),
) -> Result<Changed, SyncError> {
    let defaults = ctx.settings.sync_defaults();
    let txn = store::begin_write(&ctx.db).await?;
    let mut chosen = store::sync_settings::find(&txn, user).await?;
    let before = chosen.over(&defaults);
    edit(&mut chosen);
    let effective = chosen.over(&defaults);
    store::sync_settings::save(&txn, user, &chosen, Utc::now()).await?;
    let full_sync_requested = ChosenSettings::changes_import(&before, &effective);
    if full_sync_requested {
        // Durable: whichever instance pulls next lists the whole window.
        sync_states::drop_token(&txn, user).await?;
    }
    txn.commit().await?;
    if full_sync_requested {
        let active = connections::find(&ctx.db, user)
            .await?
            .is_some_and(|c| c.status == ConnectionStatus::Active);
        if active {
            ctx.pulls.request_mode(user, super::pull::PullMode::Full);
        }
    }
    Ok(Changed {
        view: SettingsView { chosen, effective },
        full_sync_requested,
    })
}
