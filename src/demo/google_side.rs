//! `slotsync emulator list|create|edit|delete`: act as a Google user on an emulator's
//! calendar from the shell, the way that user would in Google Calendar. The calls go
//! through google-calendar3 with an access token from the emulator's control API
//! (`POST /_emulator/users/{email}/token`), so the service sees ordinary Google changes
//! (and the emulator sends its push notifications).

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use clap::{Args, Subcommand};
use google_calendar3::api::{Event, EventDateTime};

use crate::google::hub::{calendar_hub, Hub};
use crate::google::GoogleEndpoints;

/// The Google-side commands of `slotsync emulator`.
#[derive(Debug, Clone, Subcommand)]
pub enum GoogleSideCommand {
    /// List the events of a Google user's calendar on a running emulator.
    List(ListArgs),
    /// Create an event, as the Google user would in Google Calendar.
    Create(CreateArgs),
    /// Change an event (title, times, description, location) as the Google user.
    Edit(EditArgs),
    /// Delete an event as the Google user.
    Delete(DeleteArgs),
}

/// Which emulator, which Google user, which calendar.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Base URL of the running emulator (`slotsync demo` prints it).
    #[arg(long, env = "GOOGLE_EMULATOR_URL", default_value = "http://127.0.0.1:8085")]
    pub url: String,
    /// The Google user to act as (the emulator creates it when unknown).
    #[arg(long)]
    pub email: String,
    /// Calendar id; `primary` is the user's own calendar.
    #[arg(long, default_value = "primary")]
    pub calendar: String,
}

/// One event, by id or by title.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct Which {
    /// The event's id (`list` shows it).
    #[arg(long)]
    pub event: Option<String>,
    /// The event whose title is exactly this; it must be the only live one.
    #[arg(long)]
    pub find: Option<String>,
}

/// Options of `list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub target: Target,
    /// Show deleted (cancelled) events too.
    #[arg(long)]
    pub deleted: bool,
}

/// Options of `create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Target,
    /// The event's title.
    #[arg(long)]
    pub title: String,
    /// Start: RFC 3339 (`2026-12-01T09:00:00Z`) or a date (`2026-12-01`, all day).
    #[arg(long, value_parser = parse_when)]
    pub start: When,
    /// End: RFC 3339, or a date for all-day events (exclusive, as in Google Calendar).
    #[arg(long, value_parser = parse_when)]
    pub end: When,
    /// IANA time zone of the event (e.g. `Europe/Paris`).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Location.
    #[arg(long)]
    pub location: Option<String>,
}

/// Options of `edit`.
#[derive(Debug, Clone, Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub which: Which,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    /// New start (RFC 3339 or a date); without `--end` the event keeps its length.
    #[arg(long, value_parser = parse_when)]
    pub start: Option<When>,
    /// New end (RFC 3339 or a date).
    #[arg(long, value_parser = parse_when)]
    pub end: Option<When>,
    /// New IANA time zone.
    #[arg(long)]
    pub timezone: Option<String>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// New location.
    #[arg(long)]
    pub location: Option<String>,
}

/// Options of `delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub which: Which,
}

/// A start or end: an instant, or a day for all-day events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// A timed event's instant.
    At(DateTime<FixedOffset>),
    /// An all-day event's date.
    Day(NaiveDate),
}

/// Parses `--start`/`--end`: RFC 3339, or `yyyy-mm-dd`.
pub fn parse_when(raw: &str) -> Result<When, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(When::At(at));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(When::Day)
        .map_err(|_| format!("`{raw}` is neither RFC 3339 (2026-12-01T09:00:00Z) nor a date (2026-12-01)"))
}

impl When {
    fn to_google(self, time_zone: Option<String>) -> EventDateTime {
        match self {
            When::At(at) => EventDateTime {
                date_time: Some(at.to_utc()),
                time_zone,
                ..Default::default()
            },
            When::Day(day) => EventDateTime {
                date: Some(day),
                time_zone,
                ..Default::default()
            },
        }
    }
}

/// Runs one Google-side command and prints what it did.
pub async fn run(command: GoogleSideCommand) -> anyhow::Result<()> {
    match command {
        GoogleSideCommand::List(args) => list(args).await,
        GoogleSideCommand::Create(args) => create(args).await,
        GoogleSideCommand::Edit(args) => edit(args).await,
        GoogleSideCommand::Delete(args) => delete(args).await,
    }
}

/// A hub acting as the target's Google user.
async fn act_as(target: &Target) -> anyhow::Result<Hub> {
    let base = target.url.trim_end_matches('/');
    let url = format!("{base}/_emulator/users/{}/token", target.email);
    let resp = reqwest::Client::new().post(&url).send().await.map_err(|e| {
        anyhow::anyhow!("cannot reach the emulator at {base} ({e}); is `slotsync demo` or `slotsync emulator` running?")
    })?;
    if !resp.status().is_success() {
        anyhow::bail!(
            "the emulator at {base} refused a token for {}: {} {}",
            target.email,
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let body: serde_json::Value = resp.json().await?;
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{base} answered no access_token: is it a slotsync emulator?"))?
        .to_owned();
    Ok(calendar_hub(&GoogleEndpoints::emulator(base), token))
}

/// Google's error message, or the transport error.
fn google_error(what: &str, e: google_calendar3::Error) -> anyhow::Error {
    match e {
        google_calendar3::Error::BadRequest(body) => {
            let code = &body["error"]["code"];
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            anyhow::anyhow!("{what}: Google answered {code}: {message}")
        }
        other => anyhow::anyhow!("{what}: {other}"),
    }
}

/// Every event of the calendar (following pages).
async fn all_events(hub: &Hub, calendar: &str, deleted: bool) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let mut call = hub.events().list(calendar).show_deleted(deleted).max_results(2500);
        if let Some(token) = &page {
            call = call.page_token(token);
        }
        let (_, listing) = call.doit().await.map_err(|e| google_error("listing events", e))?;
        events.extend(listing.items.unwrap_or_default());
        match listing.next_page_token {
            Some(token) => page = Some(token),
            None => return Ok(events),
        }
    }
}

/// The one event `which` names.
async fn find_event(hub: &Hub, calendar: &str, which: &Which) -> anyhow::Result<Event> {
    if let Some(id) = &which.event {
        let (_, event) = hub
            .events()
            .get(calendar, id)
            .doit()
            .await
            .map_err(|e| google_error(&format!("reading event {id}"), e))?;
        return Ok(event);
    }
    let title = which.find.as_deref().unwrap_or_default();
    let mut matches: Vec<Event> = all_events(hub, calendar, false)
        .await?
        .into_iter()
        .filter(|e| e.summary.as_deref() == Some(title))
        .collect();
    match matches.len() {
        0 => anyhow::bail!("no event titled {title:?}; `slotsync emulator list` shows the events"),
        1 => Ok(matches.remove(0)),
        n => {
            let ids: Vec<&str> = matches.iter().filter_map(|e| e.id.as_deref()).collect();
            anyhow::bail!(
                "{n} events are titled {title:?} ({}); name one with --event",
                ids.join(", ")
            )
        }
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let hub = act_as(&args.target).await?;
    let mut events = all_events(&hub, &args.target.calendar, args.deleted).await?;
    events.sort_by_key(|e| (show_when(e.start.as_ref()), e.id.clone()));
    if events.is_empty() {
        println!("no events in {}'s calendar", args.target.email);
        return Ok(());
    }
    println!(
        "{:<28} {:<10} {:<21} {:<21} TITLE",
        "EVENT ID", "STATUS", "START", "END"
    );
    for e in &events {
        let slot = e
            .extended_properties
            .as_ref()
            .and_then(|p| p.private.as_ref())
            .and_then(|p| p.get("slotsync_slot"))
            .map(|s| format!("  (slot {s})"))
            .unwrap_or_default();
        println!(
            "{:<28} {:<10} {:<21} {:<21} {}{slot}",
            e.id.as_deref().unwrap_or("?"),
            e.status.as_deref().unwrap_or("confirmed"),
            show_when(e.start.as_ref()),
            show_when(e.end.as_ref()),
            e.summary.as_deref().unwrap_or(""),
        );
    }
    Ok(())
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let hub = act_as(&args.target).await?;
    let event = Event {
        summary: Some(args.title),
        description: args.description,
        location: args.location,
        start: Some(args.start.to_google(args.timezone.clone())),
        end: Some(args.end.to_google(args.timezone)),
        ..Default::default()
    };
    let (_, made) = hub
        .events()
        .insert(event, &args.target.calendar)
        .doit()
        .await
        .map_err(|e| google_error("creating the event", e))?;
    println!("created {} at {}", describe(&made), now());
    Ok(())
}

async fn edit(args: EditArgs) -> anyhow::Result<()> {
    if args.title.is_none()
        && args.start.is_none()
        && args.end.is_none()
        && args.timezone.is_none()
        && args.description.is_none()
        && args.location.is_none()
    {
        anyhow::bail!("nothing to change: give --title, --start, --end, --timezone, --description or --location");
    }
    let hub = act_as(&args.target).await?;
    let current = find_event(&hub, &args.target.calendar, &args.which).await?;
    let id = current.id.clone().unwrap_or_default();
    let zone = args
        .timezone
        .clone()
        .or_else(|| current.start.as_ref().and_then(|s| s.time_zone.clone()));
    let (start, end) = new_times(&current, args.start, args.end, args.timezone.is_some());
    let change = Event {
        summary: args.title,
        description: args.description,
        location: args.location,
        start: start.map(|w| w.to_google(zone.clone())),
        end: end.map(|w| w.to_google(zone)),
        ..Default::default()
    };
    let (_, edited) = hub
        .events()
        .patch(change, &args.target.calendar, &id)
        .doit()
        .await
        .map_err(|e| google_error(&format!("editing event {id}"), e))?;
    println!("edited {} at {}", describe(&edited), now());
    Ok(())
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let hub = act_as(&args.target).await?;
    let current = find_event(&hub, &args.target.calendar, &args.which).await?;
    let id = current.id.clone().unwrap_or_default();
    hub.events()
        .delete(&args.target.calendar, &id)
        .doit()
        .await
        .map_err(|e| google_error(&format!("deleting event {id}"), e))?;
    println!("deleted {} at {}", describe(&current), now());
    Ok(())
}

/// The start and end to send: a new start alone moves the event and keeps its length; a
/// new zone alone re-sends the current times with it.
fn new_times(
    current: &Event,
    start: Option<When>,
    end: Option<When>,
    zone_changed: bool,
) -> (Option<When>, Option<When>) {
    let old_start = current.start.as_ref().and_then(from_google);
    let old_end = current.end.as_ref().and_then(from_google);
    match (start, end) {
        (Some(s), Some(e)) => (Some(s), Some(e)),
        (Some(s), None) => {
            let end = match (s, old_start, old_end) {
                (When::At(new), Some(When::At(a)), Some(When::At(b))) => Some(When::At(new + (b - a))),
                (When::Day(new), Some(When::Day(a)), Some(When::Day(b))) => Some(When::Day(new + (b - a))),
                _ => None,
            };
            (Some(s), end)
        }
        (None, Some(e)) => (old_start, Some(e)),
        (None, None) if zone_changed => (old_start, old_end),
        (None, None) => (None, None),
    }
}

fn from_google(t: &EventDateTime) -> Option<When> {
    match (t.date_time, t.date) {
        (Some(at), _) => Some(When::At(at.fixed_offset())),
        (None, Some(day)) => Some(When::Day(day)),
        _ => None,
    }
}

fn show_when(t: Option<&EventDateTime>) -> String {
    match t.and_then(from_google) {
        Some(When::At(at)) => at.to_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(When::Day(day)) => day.to_string(),
        None => "-".into(),
    }
}

/// `event <id> "title" (start → end)`.
fn describe(e: &Event) -> String {
    format!(
        "event {} {:?} ({} → {})",
        e.id.as_deref().unwrap_or("?"),
        e.summary.as_deref().unwrap_or(""),
        show_when(e.start.as_ref()),
        show_when(e.end.as_ref())
    )
}

fn now() -> String {
    Utc::now().format("%H:%M:%S%.3f UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> When {
        When::At(DateTime::parse_from_rfc3339(s).unwrap())
    }

    #[test]
    fn times_are_instants_or_dates() {
        assert_eq!(
            parse_when("2026-12-01T09:00:00+01:00").unwrap(),
            at("2026-12-01T08:00:00Z")
        );
        assert_eq!(
            parse_when("2026-12-01").unwrap(),
            When::Day(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap())
        );
        assert!(parse_when("tomorrow").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn a_new_start_alone_keeps_the_events_length() {
        let event = Event {
            start: Some(at("2026-12-01T09:00:00Z").to_google(None)),
            end: Some(at("2026-12-01T10:30:00Z").to_google(None)),
            ..Default::default()
        };
        let (start, end) = new_times(&event, Some(at("2026-12-02T14:00:00Z")), None, false);
        assert_eq!(start, Some(at("2026-12-02T14:00:00Z")));
        assert_eq!(end, Some(at("2026-12-02T15:30:00Z")));
        assert_eq!(new_times(&event, None, None, false), (None, None));
    }
}
