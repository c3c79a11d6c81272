//! The one sync decision, apart from any I/O, for both directions: given the slot as it is
//! here, the event as Google holds it, and the rules (conflict policy, import, origin),
//! what happens — an echo or nothing new (skip, and why), Google's content applied, the
//! slot deleted, the local content kept (the push overwrites the event, or re-creates it
//! when Google deleted it), or an import. The pull (`pull.rs`) asks it for every changed
//! event; the push (`push.rs`) asks it when Google answers that the event moved under it
//! (412, a 409 on an event edited since, or the event deleted). A conflict comes out as the
//! [`ConflictRecord`] that is logged, built here once for both.
//!
//! Which events created in Google are imported, and how (read-only, a meeting the user
//! organises), is the user's [`ImportFilter`] over the traits read here off Google's event;
//! an imported slot whose event the filter now excludes is unlinked ([`Action::Unlink`]).
//!
//! A new conflict policy changes `domain::ConflictPolicy::winner` and this module's tests,
//! nothing else. The decision table is in `docs/architecture.md`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use google_calendar3::api::Event;

use crate::domain::{
    ConflictCase, ConflictPolicy, ConflictRecord, DetectedBy, EventTraits, FilteredOut, Fingerprint, ImportFilter,
    SlotDraft, SlotMarks, Verdict, Winner,
};
use crate::google::mapping::{event_fingerprint, event_origin, event_to_draft};

/// What the plan needs to know of a local slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSlot {
    /// The slot's version.
    pub version: i64,
    /// The version Google holds (last pushed or pulled).
    pub synced_version: Option<i64>,
    /// Fingerprint of what Google held at the last sync.
    pub synced_fingerprint: Option<String>,
    /// Fingerprint of the slot's content now.
    pub current_fingerprint: Fingerprint,
    /// When the slot last changed locally.
    pub updated_at: DateTime<Utc>,
    /// Whether the slot is deleted.
    pub deleted: bool,
    /// Whether the slot was imported from Google (`source = google`): only those are
    /// filtered; slots made through the API never are.
    pub imported: bool,
}

impl LocalSlot {
    /// A local change waits to be pushed.
    fn changed_locally(&self) -> bool {
        self.synced_version != Some(self.version)
    }
}

/// Why an event needs no local write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The event is our own write coming back.
    Echo,
    /// The event already holds the slot's current content.
    AlreadyEqual,
    /// A deletion of an event we never knew.
    UnknownDeleted,
    /// The slot was deleted here; the pending (or done) deletion wins.
    DeletedLocally,
    /// An event slotsync wrote for a slot that no longer exists here.
    Orphan,
    /// An event created in Google, and importing is off.
    ImportOff,
    /// The event cannot be a slot (no times, longer than a slot may be…).
    Unrepresentable,
    /// An event created in Google that the user's import filter excludes.
    Filtered,
}

/// What to do with one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing to take from Google. (A push meeting it writes its content over the event,
    /// unless the event already holds it: [`SkipReason::AlreadyEqual`].)
    Skip(SkipReason),
    /// Make the slot hold Google's content (a new version, not pushed back).
    ApplyRemote {
        draft: SlotDraft,
        fingerprint: Fingerprint,
        conflict: Option<ConflictRecord>,
    },
    /// Soft-delete the slot (deleted in Google; not pushed back).
    DeleteLocal { conflict: Option<ConflictRecord> },
    /// The local change won: Google is to hold it. The pull remembers Google's current
    /// etag so the pending push overwrites the event without another conflict; a push
    /// writes at once with that etag, or re-creates the event if Google deleted it.
    KeepLocal {
        etag: Option<String>,
        conflict: ConflictRecord,
    },
    /// Create a slot (`source = google`) for an event created in Google.
    Import {
        draft: SlotDraft,
        fingerprint: Fingerprint,
        /// Read-only, its type, a meeting's attendees.
        marks: SlotMarks,
    },
    /// The slot was imported, and the user's filter now excludes its event: it leaves the
    /// user's slots without any write to Google (the event stays there).
    Unlink { why: FilteredOut },
}

/// The rules the plan follows.
#[derive(Debug, Clone)]
pub struct PlanRules<'a> {
    pub policy: ConflictPolicy,
    /// Which direction asks (recorded with a conflict).
    pub detected_by: DetectedBy,
    pub import: bool,
    /// This deployment's `slotsync_origin`.
    pub origin: &'a str,
    /// The calendar's zone, for events that name none.
    pub calendar_zone: Tz,
    /// The user's import filter; `None` (the push) imports and unlinks nothing by it.
    pub filter: Option<&'a ImportFilter>,
}

/// What the import filter reads off an event.
pub fn event_traits(event: &Event) -> EventTraits {
    let attendees = event.attendees.as_deref().unwrap_or_default();
    EventTraits {
        event_type: event.event_type.clone(),
        free: event.transparency.as_deref() == Some("transparent"),
        private: matches!(event.visibility.as_deref(), Some("private" | "confidential")),
        declined: attendees
            .iter()
            .any(|a| a.self_ == Some(true) && a.response_status.as_deref() == Some("declined")),
        attendees: attendees.len(),
        organizer_self: event.organizer.as_ref().and_then(|o| o.self_) == Some(true),
    }
}

/// The marks an imported slot of `event` carries under `filter` (`None` when the filter
/// excludes the event).
pub fn event_marks(event: &Event, filter: &ImportFilter) -> Option<SlotMarks> {
    match filter.verdict(&event_traits(event)) {
        Verdict::Import(marks) => Some(marks),
        Verdict::Skip(_) => None,
    }
}

/// Decides what to do with `event` given the slot it belongs to (`None` if no slot is
/// linked to it).
pub fn plan(event: &Event, local: Option<&LocalSlot>, rules: &PlanRules<'_>) -> Action {
    let cancelled = event.status.as_deref() == Some("cancelled");
    let Some(local) = local else {
        if cancelled {
            return Action::Skip(SkipReason::UnknownDeleted);
        }
        if event_origin(event) == Some(rules.origin) {
            return Action::Skip(SkipReason::Orphan);
        }
        if !rules.import {
            return Action::Skip(SkipReason::ImportOff);
        }
        let marks = match rules.filter.map(|f| f.verdict(&event_traits(event))) {
            Some(Verdict::Skip(_)) => return Action::Skip(SkipReason::Filtered),
            Some(Verdict::Import(marks)) => marks,
            None => SlotMarks::default(),
        };
        return match (
            event_to_draft(event, rules.calendar_zone),
            event_fingerprint(event, rules.calendar_zone),
        ) {
            (Ok(draft), Some(fingerprint)) => Action::Import {
                draft,
                fingerprint,
                marks,
            },
            _ => Action::Skip(SkipReason::Unrepresentable),
        };
    };
    if local.deleted {
        return Action::Skip(SkipReason::DeletedLocally);
    }
    // An import the filter now excludes leaves, unless a local change of it waits to be
    // pushed (that push goes first; the next full sync unlinks it).
    if local.imported && !cancelled && !local.changed_locally() {
        if let Some(Verdict::Skip(why)) = rules.filter.map(|f| f.verdict(&event_traits(event))) {
            return Action::Unlink { why };
        }
    }
    let remote = if cancelled {
        None
    } else {
        event_fingerprint(event, rules.calendar_zone)
    };
    if let Some(fp) = &remote {
        if local.synced_fingerprint.as_deref() == Some(fp.as_str()) {
            return Action::Skip(SkipReason::Echo);
        }
        if *fp == local.current_fingerprint {
            return Action::Skip(SkipReason::AlreadyEqual);
        }
        // Our own earlier write whose bookkeeping was lost: no change in Google; the
        // pending push overwrites it.
        if local.changed_locally() && crate::google::mapping::unchanged_since_written(event, fp, rules.origin) {
            return Action::Skip(SkipReason::Echo);
        }
    }
    let draft = if cancelled {
        None
    } else {
        match event_to_draft(event, rules.calendar_zone) {
            Ok(d) => Some(d),
            Err(_) if !local.changed_locally() => return Action::Skip(SkipReason::Unrepresentable),
            Err(_) => None,
        }
    };
    let google_side = |conflict| match (&draft, &remote) {
        (Some(draft), Some(fingerprint)) => Action::ApplyRemote {
            draft: draft.clone(),
            fingerprint: fingerprint.clone(),
            conflict,
        },
        _ => Action::DeleteLocal { conflict },
    };
    if !local.changed_locally() {
        return google_side(None);
    }
    // Both sides changed. A deletion has no time; an event slotsync cannot represent
    // cannot win.
    let google_time = if cancelled { None } else { event.updated };
    let winner = match rules.policy.winner(Some(local.updated_at), google_time) {
        Winner::Google if !cancelled && draft.is_none() => Winner::App,
        Winner::Google if cancelled && rules.policy != ConflictPolicy::GoogleWins => Winner::App,
        w => w,
    };
    let conflict = ConflictRecord {
        kind: if cancelled {
            ConflictCase::DeletedInGoogle
        } else {
            ConflictCase::BothChanged
        },
        policy: rules.policy,
        winner,
        slot_version: local.version,
        slot_updated_at: local.updated_at,
        google_updated_at: event.updated,
        detected_by: rules.detected_by,
    };
    match winner {
        Winner::Google => google_side(Some(conflict)),
        Winner::App => Action::KeepLocal {
            etag: event.etag.clone(),
            conflict,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SlotFields, SlotId};
    use crate::google::mapping::EventContent;

    const ORIGIN: &str = "ours";

    fn rules(policy: ConflictPolicy) -> PlanRules<'static> {
        PlanRules {
            policy,
            detected_by: DetectedBy::Pull,
            import: true,
            origin: ORIGIN,
            calendar_zone: Tz::UTC,
            filter: None,
        }
    }

    fn draft(title: &str) -> SlotDraft {
        SlotDraft::validate(SlotFields {
            title: Some(title.into()),
            start: Some("2026-12-01T09:00:00Z".parse().unwrap()),
            end: Some("2026-12-01T10:00:00Z".parse().unwrap()),
            ..Default::default()
        })
        .unwrap()
    }

    fn fp(title: &str) -> Fingerprint {
        Fingerprint::of(&draft(title), &[], false)
    }

    /// The event slotsync would have written for a slot titled `title`, as Google returns it.
    fn our_event(title: &str, updated: &str) -> Event {
        let d = draft(title);
        let content = EventContent {
            slot: SlotId(uuid::Uuid::nil()),
            draft: &d,
            recurrence: &[],
            origin: ORIGIN,
        };
        let mut e = content.to_event();
        e.id = Some("abcdefgh".into());
        e.etag = Some(format!("\"{title}\""));
        e.updated = Some(updated.parse().unwrap());
        e
    }

    /// Our event for `written`, then edited in Google to `title`: the content changes, the
    /// `slotsync_fp` written with it does not.
    fn edited_in_google(written: &str, title: &str, updated: &str) -> Event {
        let mut e = our_event(written, updated);
        e.summary = Some(title.into());
        e.etag = Some(format!("\"{title}\""));
        e
    }

    fn cancelled() -> Event {
        Event {
            id: Some("abcdefgh".into()),
            status: Some("cancelled".into()),
            ..Default::default()
        }
    }

    /// A slot last synced with content `synced`, now holding `current`, changed at `at`.
    fn local(synced: &str, current: &str, at: &str) -> LocalSlot {
        let pending = synced != current;
        LocalSlot {
            version: if pending { 3 } else { 2 },
            synced_version: Some(2),
            synced_fingerprint: Some(fp(synced).as_str().to_owned()),
            current_fingerprint: fp(current),
            updated_at: at.parse().unwrap(),
            deleted: false,
            imported: false,
        }
    }

    const EARLY: &str = "2026-11-21T10:00:00Z";
    const LATE: &str = "2026-11-21T11:00:00Z";

    #[test]
    fn our_own_write_coming_back_is_an_echo() {
        let slot = local("a", "a", EARLY);
        let action = plan(&our_event("a", LATE), Some(&slot), &rules(ConflictPolicy::LatestWins));
        assert_eq!(action, Action::Skip(SkipReason::Echo));
    }

    #[test]
    fn an_event_already_holding_the_pending_content_needs_nothing() {
        let slot = local("a", "b", EARLY);
        let action = plan(&our_event("b", LATE), Some(&slot), &rules(ConflictPolicy::GoogleWins));
        assert_eq!(action, Action::Skip(SkipReason::AlreadyEqual));
    }

    #[test]
    fn a_google_edit_of_an_unchanged_slot_is_applied_without_conflict() {
        let slot = local("a", "a", EARLY);
        match plan(
            &edited_in_google("a", "g", LATE),
            Some(&slot),
            &rules(ConflictPolicy::AppWins),
        ) {
            Action::ApplyRemote { draft, conflict, .. } => {
                assert_eq!(draft.title, "g");
                assert_eq!(conflict, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_older_write_of_ours_under_a_pending_change_is_an_echo_not_a_conflict() {
        // We pushed "b" but crashed before recording it; then the slot changed to "c".
        let mut slot = local("a", "c", LATE);
        slot.version = 4;
        let ours_unrecorded = our_event("b", LATE);
        assert_eq!(
            plan(&ours_unrecorded, Some(&slot), &rules(ConflictPolicy::GoogleWins)),
            Action::Skip(SkipReason::Echo)
        );
    }

    #[test]
    fn a_google_deletion_of_an_unchanged_slot_deletes_it() {
        let slot = local("a", "a", EARLY);
        assert_eq!(
            plan(&cancelled(), Some(&slot), &rules(ConflictPolicy::AppWins)),
            Action::DeleteLocal { conflict: None }
        );
    }

    #[test]
    fn both_changed_follows_the_policy() {
        let slot = local("a", "mine", EARLY);
        let google_later = edited_in_google("a", "theirs", LATE);
        match plan(&google_later, Some(&slot), &rules(ConflictPolicy::LatestWins)) {
            Action::ApplyRemote { conflict: Some(c), .. } => assert_eq!(c.winner, Winner::Google),
            other => panic!("{other:?}"),
        }
        match plan(&google_later, Some(&slot), &rules(ConflictPolicy::AppWins)) {
            Action::KeepLocal { etag, conflict } => {
                assert_eq!(conflict.winner, Winner::App);
                assert_eq!(etag.as_deref(), Some("\"theirs\""));
            }
            other => panic!("{other:?}"),
        }
        let slot_later = local("a", "mine", "2026-11-21T12:00:00Z");
        assert!(matches!(
            plan(&google_later, Some(&slot_later), &rules(ConflictPolicy::LatestWins)),
            Action::KeepLocal { .. }
        ));
    }

    #[test]
    fn a_deletion_in_google_under_a_local_edit_only_wins_under_google_wins() {
        let slot = local("a", "mine", EARLY);
        match plan(&cancelled(), Some(&slot), &rules(ConflictPolicy::LatestWins)) {
            Action::KeepLocal { conflict, .. } => {
                assert_eq!(conflict.winner, Winner::App);
                assert_eq!(conflict.kind, ConflictCase::DeletedInGoogle);
            }
            other => panic!("{other:?}"),
        }
        match plan(&cancelled(), Some(&slot), &rules(ConflictPolicy::GoogleWins)) {
            Action::DeleteLocal { conflict: Some(c) } => {
                assert_eq!(c.winner, Winner::Google);
                assert_eq!(c.kind, ConflictCase::DeletedInGoogle);
                assert_eq!(c.policy, ConflictPolicy::GoogleWins);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_conflict_is_recorded_with_both_sides_times_and_who_asked() {
        let slot = local("a", "mine", EARLY);
        let mut push = rules(ConflictPolicy::LatestWins);
        push.detected_by = DetectedBy::Push;
        match plan(&edited_in_google("a", "theirs", LATE), Some(&slot), &push) {
            Action::ApplyRemote { conflict: Some(c), .. } => assert_eq!(
                c,
                ConflictRecord {
                    kind: ConflictCase::BothChanged,
                    policy: ConflictPolicy::LatestWins,
                    winner: Winner::Google,
                    slot_version: 3,
                    slot_updated_at: EARLY.parse().unwrap(),
                    google_updated_at: Some(LATE.parse().unwrap()),
                    detected_by: DetectedBy::Push,
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn foreign_events_are_imported_unless_importing_is_off() {
        let mut event = our_event("meeting", LATE);
        event.extended_properties = None;
        assert!(matches!(
            plan(&event, None, &rules(ConflictPolicy::LatestWins)),
            Action::Import { .. }
        ));
        let mut off = rules(ConflictPolicy::LatestWins);
        off.import = false;
        assert_eq!(plan(&event, None, &off), Action::Skip(SkipReason::ImportOff));
    }

    #[test]
    fn unknown_deletions_orphans_and_locally_deleted_slots_are_skipped() {
        let r = rules(ConflictPolicy::LatestWins);
        assert_eq!(plan(&cancelled(), None, &r), Action::Skip(SkipReason::UnknownDeleted));
        assert_eq!(plan(&our_event("a", LATE), None, &r), Action::Skip(SkipReason::Orphan));
        let mut gone = local("a", "a", EARLY);
        gone.deleted = true;
        assert_eq!(
            plan(&our_event("g", LATE), Some(&gone), &r),
            Action::Skip(SkipReason::DeletedLocally)
        );
    }

    #[test]
    fn an_event_that_cannot_be_a_slot_never_overwrites_one() {
        let slot = local("a", "mine", EARLY);
        let mut endless = our_event("g", LATE);
        endless.end = endless.start.clone();
        assert!(matches!(
            plan(&endless, Some(&slot), &rules(ConflictPolicy::GoogleWins)),
            Action::KeepLocal { .. }
        ));
        let unchanged = local("a", "a", EARLY);
        assert_eq!(
            plan(&endless, Some(&unchanged), &rules(ConflictPolicy::GoogleWins)),
            Action::Skip(SkipReason::Unrepresentable)
        );
    }

    fn foreign(title: &str) -> Event {
        let mut e = our_event(title, LATE);
        e.extended_properties = None;
        e
    }

    fn with_filter<'a>(filter: &'a ImportFilter) -> PlanRules<'a> {
        PlanRules {
            filter: Some(filter),
            ..rules(ConflictPolicy::LatestWins)
        }
    }

    fn attendee(email: &str, me: bool, answer: &str) -> google_calendar3::api::EventAttendee {
        google_calendar3::api::EventAttendee {
            email: Some(email.into()),
            self_: me.then_some(true),
            response_status: Some(answer.into()),
            ..Default::default()
        }
    }

    fn imported_marks(action: Action) -> SlotMarks {
        match action {
            Action::Import { marks, .. } => marks,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_filter_skips_or_marks_foreign_events_by_type() {
        let filter = ImportFilter::default();
        let r = with_filter(&filter);
        let mut birthday = foreign("Ann");
        birthday.event_type = Some("birthday".into());
        assert_eq!(plan(&birthday, None, &r), Action::Skip(SkipReason::Filtered));
        let mut away = foreign("Away");
        away.event_type = Some("outOfOffice".into());
        let marks = imported_marks(plan(&away, None, &r));
        assert_eq!(marks.read_only_reason.as_deref(), Some("event_type:outOfOffice"));
        assert_eq!(marks.event_type.as_deref(), Some("outOfOffice"));
        let plain = imported_marks(plan(&foreign("plain"), None, &r));
        assert_eq!(plain, SlotMarks::default());
    }

    #[test]
    fn meetings_are_marked_by_who_organises_them_and_declined_ones_skipped() {
        let filter = ImportFilter::default();
        let r = with_filter(&filter);
        let mut invited = foreign("their meeting");
        invited.attendees = Some(vec![
            attendee("org@example.com", false, "accepted"),
            attendee("me@example.com", true, "needsAction"),
        ]);
        let marks = imported_marks(plan(&invited, None, &r));
        assert_eq!(marks.read_only_reason.as_deref(), Some("not_organizer"));
        assert_eq!(marks.attendee_count, None);

        let mut organised = foreign("my meeting");
        organised.organizer = Some(google_calendar3::api::EventOrganizer {
            self_: Some(true),
            ..Default::default()
        });
        organised.attendees = Some(vec![
            attendee("me@example.com", true, "accepted"),
            attendee("bob@example.com", false, "needsAction"),
            attendee("eve@example.com", false, "needsAction"),
        ]);
        let marks = imported_marks(plan(&organised, None, &r));
        assert_eq!(marks.read_only_reason, None);
        assert_eq!(marks.attendee_count, Some(3));

        let mut declined = invited.clone();
        declined.attendees = Some(vec![
            attendee("org@example.com", false, "accepted"),
            attendee("me@example.com", true, "declined"),
        ]);
        assert_eq!(plan(&declined, None, &r), Action::Skip(SkipReason::Filtered));
    }

    #[test]
    fn an_import_the_filter_now_excludes_is_unlinked_but_an_api_slot_never_is() {
        let strict = ImportFilter {
            skip_free: true,
            ..ImportFilter::default()
        };
        let r = with_filter(&strict);
        let mut free = foreign("a");
        free.transparency = Some("transparent".into());
        let mut imported = local("a", "a", EARLY);
        imported.imported = true;
        assert_eq!(
            plan(&free, Some(&imported), &r),
            Action::Unlink { why: FilteredOut::Free }
        );
        // Made through the API: the filter does not apply; Google marking it free is an
        // edit like any other.
        let from_api = local("a", "a", EARLY);
        assert!(matches!(
            plan(&free, Some(&from_api), &r),
            Action::ApplyRemote { ref draft, .. } if draft.appearance.transparency == crate::domain::Transparency::Free
        ));
        // A local change waiting to be pushed goes first.
        let mut pending = local("a", "mine", EARLY);
        pending.imported = true;
        assert!(!matches!(plan(&free, Some(&pending), &r), Action::Unlink { .. }));
        // The push plans without a filter: never an unlink.
        assert!(matches!(
            plan(&free, Some(&imported), &rules(ConflictPolicy::LatestWins)),
            Action::ApplyRemote { .. }
        ));
        // A deletion in Google is a deletion, filtered or not.
        assert_eq!(
            plan(&cancelled(), Some(&imported), &r),
            Action::DeleteLocal { conflict: None }
        );
    }
}
