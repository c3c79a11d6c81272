//! The small enumerations stored as strings.
//!
//! The ones that are columns (`Source`, `PushState`, `Side`, `ConnectionStatus`) derive
//! sea-orm's `DeriveActiveEnum`, so the entities hold them typed; each `string_value` is
//! the spelling the column has always held (no data migration), and the same spelling is
//! the one `as_str`, `FromStr`, `Display` and serde use (a test checks that they agree).
//! The derive is the only thing of sea-orm's here: no query, no I/O.

use std::fmt;
use std::str::FromStr;

use sea_orm::{DeriveActiveEnum, EnumIter};

/// Where a slot was born (`slots.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)")]
pub enum Source {
    /// Created through the slotsync API.
    #[sea_orm(string_value = "app")]
    App,
    /// Imported from an event created in Google Calendar.
    #[sea_orm(string_value = "google")]
    Google,
}

/// Where a slot stands in the push outbox (`slots.push_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)")]
pub enum PushState {
    /// Google holds the slot's current version.
    #[sea_orm(string_value = "clean")]
    Clean,
    /// A local change waits to be pushed.
    #[sea_orm(string_value = "dirty")]
    Dirty,
    /// Pushing failed for good; `last_push_error` says why.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Pushing is paused (breaker tripped, re-authorisation needed, or sync stopped).
    #[sea_orm(string_value = "paused")]
    Paused,
}

/// The side whose change was synced last (`slots.last_change_side`, for the slot breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)")]
pub enum Side {
    /// A local change was pushed to Google.
    #[sea_orm(string_value = "app")]
    App,
    /// A change made in Google was applied here.
    #[sea_orm(string_value = "google")]
    Google,
}

/// Who made an occurrence exception (`occurrence_exceptions.origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)")]
pub enum OccurrenceOrigin {
    /// The scheduling client, through the API.
    #[sea_orm(string_value = "api")]
    Api,
    /// Someone in Google Calendar (pulled).
    #[sea_orm(string_value = "google")]
    Google,
}

/// Where a user's Google connection stands (`google_connections.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)")]
pub enum ConnectionStatus {
    /// Connected and syncing.
    #[sea_orm(string_value = "active")]
    Active,
    /// The refresh token stopped working: the user must connect again.
    #[sea_orm(string_value = "needs_reauth")]
    NeedsReauth,
    /// The user disconnected; the tokens are erased (the row stays for the status).
    #[sea_orm(string_value = "revoked")]
    Revoked,
    /// The user stopped syncing (`DELETE /sync`); tokens are kept, nothing is called.
    #[sea_orm(string_value = "stopped")]
    Stopped,
    /// Google granted the tokens without a scope slotsync needs (the calendar box was
    /// unticked on the consent screen, or the access was narrowed later).
    #[sea_orm(string_value = "missing_scopes")]
    MissingScopes,
    /// The connected calendar no longer exists in Google (deleted there).
    #[sea_orm(string_value = "calendar_missing")]
    CalendarMissing,
    /// A disconnect is deleting slotsync's events before it revokes the grant.
    #[sea_orm(string_value = "disconnecting")]
    Disconnecting,
}

/// What an entry of the sync-event log (`sync_events.kind`) records. The column stays a
/// plain string: the log is history and may hold kinds an older version wrote, which must
/// still read back; every kind written now is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A Google account was connected (first time, again, or continued).
    Connect,
    /// The connection moved to another account or calendar.
    Rehome,
    /// The user disconnected.
    Disconnect,
    /// A disconnect's deletion of slotsync's events ended.
    DisconnectFinished,
    /// The refresh token stopped working.
    NeedsReauth,
    /// A grant lacks a scope slotsync needs.
    MissingScopes,
    /// The connected calendar was deleted in Google.
    CalendarMissing,
    /// The mass-deletion guard held deletions pulled from Google.
    DeletionsHeld,
    /// Held deletions were applied.
    DeletionsApplied,
    /// Held deletions were discarded (the slots are pushed again).
    DeletionsDiscarded,
    /// A slot changed on both sides (the detail is a `ConflictRecord`).
    Conflict,
    /// A push failed for good.
    PushFailed,
    /// A breaker (the user's or a slot's) tripped.
    BreakerTripped,
    /// Google asked for a full sync (`410 fullSyncRequired`).
    FullResync,
    /// A notification channel could not be created.
    ChannelFailed,
    /// The user stopped syncing.
    SyncStopped,
    /// The user resumed syncing.
    SyncResumed,
    /// The user closed the breakers.
    BreakerReset,
}

/// Who wins when both sides changed a slot since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictPolicy {
    /// The side changed last wins (the slot's `updated_at` against the event's `updated`).
    #[default]
    LatestWins,
    /// slotsync's version always wins.
    AppWins,
    /// Google's version always wins.
    GoogleWins,
}

/// The side a conflict resolution keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    /// slotsync's version.
    App,
    /// Google's version.
    Google,
}

impl ConflictPolicy {
    /// The winner, given when each side last changed (`None` when a side's time is unknown;
    /// an unknown time loses, so a change is never dropped for want of a clock).
    pub fn winner(
        self,
        app_changed: Option<chrono::DateTime<chrono::Utc>>,
        google_changed: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Winner {
        match self {
            ConflictPolicy::AppWins => Winner::App,
            ConflictPolicy::GoogleWins => Winner::Google,
            ConflictPolicy::LatestWins => match (app_changed, google_changed) {
                (Some(app), Some(google)) if google > app => Winner::Google,
                (None, Some(_)) => Winner::Google,
                _ => Winner::App,
            },
        }
    }
}

macro_rules! string_enum {
    ($ty:ty, $($variant:path => $text:literal),+ $(,)?) => {
        impl $ty {
            /// The stored and displayed spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $text),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($variant),)+
                    other => Err(format!("unknown {} `{other}`", stringify!($ty))),
                }
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum!(Source, Source::App => "app", Source::Google => "google");
string_enum!(
    PushState,
    PushState::Clean => "clean",
    PushState::Dirty => "dirty",
    PushState::Failed => "failed",
    PushState::Paused => "paused",
);
string_enum!(Side, Side::App => "app", Side::Google => "google");
string_enum!(
    OccurrenceOrigin,
    OccurrenceOrigin::Api => "api",
    OccurrenceOrigin::Google => "google",
);
string_enum!(
    ConnectionStatus,
    ConnectionStatus::Active => "active",
    ConnectionStatus::NeedsReauth => "needs_reauth",
    ConnectionStatus::Revoked => "revoked",
    ConnectionStatus::Stopped => "stopped",
    ConnectionStatus::MissingScopes => "missing_scopes",
    ConnectionStatus::CalendarMissing => "calendar_missing",
    ConnectionStatus::Disconnecting => "disconnecting",
);
string_enum!(
    AuditKind,
    AuditKind::Connect => "connect",
    AuditKind::Rehome => "rehome",
    AuditKind::Disconnect => "disconnect",
    AuditKind::DisconnectFinished => "disconnect_finished",
    AuditKind::NeedsReauth => "needs_reauth",
    AuditKind::MissingScopes => "missing_scopes",
    AuditKind::CalendarMissing => "calendar_missing",
    AuditKind::DeletionsHeld => "deletions_held",
    AuditKind::DeletionsApplied => "deletions_applied",
    AuditKind::DeletionsDiscarded => "deletions_discarded",
    AuditKind::Conflict => "conflict",
    AuditKind::PushFailed => "push_failed",
    AuditKind::BreakerTripped => "breaker_tripped",
    AuditKind::FullResync => "full_resync",
    AuditKind::ChannelFailed => "channel_failed",
    AuditKind::SyncStopped => "sync_stopped",
    AuditKind::SyncResumed => "sync_resumed",
    AuditKind::BreakerReset => "breaker_reset",
);
impl AuditKind {
    /// The change-log entry an audit event of this kind also is, if any: the connection's
    /// events a client following the feed must learn of.
    pub fn change(self) -> Option<ChangeKind> {
        match self {
            AuditKind::Connect | AuditKind::Rehome => Some(ChangeKind::ConnectionConnected),
            AuditKind::NeedsReauth => Some(ChangeKind::ConnectionNeedsReauth),
            AuditKind::MissingScopes => Some(ChangeKind::ConnectionMissingScopes),
            AuditKind::CalendarMissing => Some(ChangeKind::ConnectionCalendarMissing),
            AuditKind::Disconnect => Some(ChangeKind::ConnectionDisconnected),
            AuditKind::DeletionsHeld => Some(ChangeKind::DeletionsHeld),
            _ => None,
        }
    }
}

/// What a change-log entry records (`changes.kind`): the feed's and the outbound
/// webhooks' event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A slot was created (through the API, or imported from Google).
    SlotCreated,
    /// A slot's content changed.
    SlotUpdated,
    /// A slot was deleted.
    SlotDeleted,
    /// One occurrence of a recurring slot was changed (moved, retitled).
    OccurrenceUpdated,
    /// One occurrence of a recurring slot was cancelled.
    OccurrenceCancelled,
    /// Pushing a slot failed for good.
    SlotSyncFailed,
    /// A slot's pushes were paused (its breaker tripped).
    SlotPaused,
    /// A paused slot was resumed.
    SlotResumed,
    /// A Google account was connected (first time, continued or re-homed).
    ConnectionConnected,
    /// Google refused the grant: the user must connect again.
    ConnectionNeedsReauth,
    /// The grant lacks calendar access.
    ConnectionMissingScopes,
    /// The connected calendar was deleted in Google.
    ConnectionCalendarMissing,
    /// The user disconnected Google.
    ConnectionDisconnected,
    /// A mass deletion in Google was held for the user to confirm.
    DeletionsHeld,
    /// An outbound webhook endpoint was disabled (it answered 410, or failed too long).
    WebhookEndpointDisabled,
}

/// Who made a slot change recorded in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOrigin {
    /// The scheduling client, through the API.
    Api,
    /// Someone in Google Calendar (pulled).
    Google,
    /// slotsync itself (a failure, a breaker, a connection's state).
    System,
}

string_enum!(Winner, Winner::App => "app", Winner::Google => "google");
string_enum!(
    ChangeKind,
    ChangeKind::SlotCreated => "slot.created",
    ChangeKind::SlotUpdated => "slot.updated",
    ChangeKind::SlotDeleted => "slot.deleted",
    ChangeKind::OccurrenceUpdated => "occurrence.updated",
    ChangeKind::OccurrenceCancelled => "occurrence.cancelled",
    ChangeKind::SlotSyncFailed => "slot.sync_failed",
    ChangeKind::SlotPaused => "slot.paused",
    ChangeKind::SlotResumed => "slot.resumed",
    ChangeKind::ConnectionConnected => "connection.connected",
    ChangeKind::ConnectionNeedsReauth => "connection.needs_reauth",
    ChangeKind::ConnectionMissingScopes => "connection.missing_scopes",
    ChangeKind::ConnectionCalendarMissing => "connection.calendar_missing",
    ChangeKind::ConnectionDisconnected => "connection.disconnected",
    ChangeKind::DeletionsHeld => "deletions.held",
    ChangeKind::WebhookEndpointDisabled => "webhook.endpoint_disabled",
);
string_enum!(
    ChangeOrigin,
    ChangeOrigin::Api => "api",
    ChangeOrigin::Google => "google",
    ChangeOrigin::System => "system",
);
string_enum!(
    ConflictPolicy,
    ConflictPolicy::LatestWins => "latest_wins",
    ConflictPolicy::AppWins => "app_wins",
    ConflictPolicy::GoogleWins => "google_wins",
);

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn states_round_trip_through_their_spelling() {
        for s in [PushState::Clean, PushState::Dirty, PushState::Failed, PushState::Paused] {
            assert_eq!(s.as_str().parse::<PushState>().unwrap(), s);
        }
        for s in [Source::App, Source::Google] {
            assert_eq!(s.as_str().parse::<Source>().unwrap(), s);
        }
        assert!("nope".parse::<PushState>().is_err());
        for s in ConnectionStatus::iter() {
            assert_eq!(s.as_str().parse::<ConnectionStatus>().unwrap(), s);
        }
        for p in [
            ConflictPolicy::LatestWins,
            ConflictPolicy::AppWins,
            ConflictPolicy::GoogleWins,
        ] {
            assert_eq!(p.as_str().parse::<ConflictPolicy>().unwrap(), p);
        }
    }

    /// The column spelling (sea-orm's `string_value`) and `as_str` are written twice; they
    /// must be the same, or rows written before the columns were typed would not read back.
    #[test]
    fn stored_spellings_are_the_displayed_ones() {
        fn check<E: ActiveEnum<Value = String> + Iterable + Copy + fmt::Debug>(as_str: fn(E) -> &'static str) {
            for e in E::iter() {
                assert_eq!(e.to_value(), as_str(e), "{e:?}");
                assert_eq!(E::try_from_value(&as_str(e).to_owned()).unwrap().to_value(), as_str(e));
            }
        }
        check(Source::as_str);
        check(PushState::as_str);
        check(Side::as_str);
        check(OccurrenceOrigin::as_str);
        check(ConnectionStatus::as_str);
        assert_eq!(ConnectionStatus::iter().count(), 7);
        assert_eq!(
            ConnectionStatus::MissingScopes.as_str(),
            AuditKind::MissingScopes.as_str()
        );
        assert_eq!(
            ConnectionStatus::CalendarMissing.as_str(),
            AuditKind::CalendarMissing.as_str()
        );
    }

    #[test]
    fn latest_wins_compares_change_times_and_ties_go_to_the_app() {
        let t = |s: &str| Some(s.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
        let p = ConflictPolicy::LatestWins;
        assert_eq!(
            p.winner(t("2026-01-01T10:00:00Z"), t("2026-01-01T10:00:01Z")),
            Winner::Google
        );
        assert_eq!(
            p.winner(t("2026-01-01T10:00:01Z"), t("2026-01-01T10:00:00Z")),
            Winner::App
        );
        assert_eq!(
            p.winner(t("2026-01-01T10:00:00Z"), t("2026-01-01T10:00:00Z")),
            Winner::App
        );
        assert_eq!(p.winner(t("2026-01-01T10:00:00Z"), None), Winner::App);
        assert_eq!(
            ConflictPolicy::GoogleWins.winner(t("2030-01-01T00:00:00Z"), None),
            Winner::Google
        );
        assert_eq!(
            ConflictPolicy::AppWins.winner(None, t("2030-01-01T00:00:00Z")),
            Winner::App
        );
    }
}
