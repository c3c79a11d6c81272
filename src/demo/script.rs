//! What `slotsync demo` prints once everything is up: where things are, the secrets of
//! this run, and commands to paste. Every command sits alone on a line after `$ `, with
//! single-quoted arguments, so people can paste it and tests can parse it.

use chrono::{Duration, NaiveTime, Utc};

/// Everything the printed tour refers to.
#[derive(Debug, Clone)]
pub struct Tour {
    /// The service's base URL (`http://127.0.0.1:8080`).
    pub service: String,
    /// The emulator's base URL (`http://127.0.0.1:8085`).
    pub emulator: String,
    /// The generated admin token.
    pub admin_token: String,
    /// The demo user's API token.
    pub api_token: String,
    /// The demo user's (and Google user's) email.
    pub email: String,
    /// The SQLite file of this run.
    pub database: String,
    /// The live notification channel and when it expires.
    pub channel: (String, String),
    /// How to run this binary (its path).
    pub program: String,
    /// The demo's own webhook receiver, registered as the user's endpoint.
    pub webhook: String,
}

/// Title of the slot the tour creates.
pub const SLOT_TITLE: &str = "Demo slot";
/// Title the tour gives it "in Google".
pub const EDITED_TITLE: &str = "Moved in Google";

/// Quotes `arg` for a POSIX shell when it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,+%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A command line from its words.
fn command(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
    format!("$ {}", quoted.join(" "))
}

impl Tour {
    /// The whole text, ending with the line that says how to stop.
    pub fn render(&self) -> String {
        let day = Utc::now().date_naive() + Duration::days(1);
        let at = |h: u32, m: u32| {
            day.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("valid time"))
                .and_utc()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };
        let (start, end, moved_start, moved_end) = (at(9, 0), at(10, 0), at(11, 0), at(12, 30));
        let user = format!("Authorization: Bearer {}", self.api_token);
        let admin = format!("Authorization: Bearer {}", self.admin_token);
        let slot = format!(r#"{{"title":"{SLOT_TITLE}","start":"{start}","end":"{end}","timezone":"UTC"}}"#);
        let service = |path: &str| format!("{}{path}", self.service);
        let google = |action: &str, rest: &[&str]| {
            let mut words = vec![
                self.program.as_str(),
                "emulator",
                action,
                "--url",
                &self.emulator,
                "--email",
                &self.email,
            ];
            words.extend_from_slice(rest);
            command(&words)
        };
        let events = format!("{}/_emulator/calendars/{}/events", self.emulator, self.email);
        let (channel, channel_expiry) = &self.channel;
        let lines = [
            "slotsync demo: two-way sync with an emulated Google Calendar, no Google project needed.".to_owned(),
            String::new(),
            format!("  generated ADMIN_TOKEN={} for this run", self.admin_token),
            "  generated a SECRET_KEY for this run too (kept in memory, not shown)".to_owned(),
            format!(
                "  database:        SQLite file {} (deleted when the demo stops)",
                self.database
            ),
            format!(
                "  Google emulator: {} (OAuth + Calendar v3 + push notifications, in memory)",
                self.emulator
            ),
            format!(
                "  service:         {} (PUBLIC_BASE_URL: the emulator notifies {}/webhooks/google-calendar)",
                self.service, self.service
            ),
            String::new(),
            format!(
                "  User {} was created and connected to the Google account of the same",
                self.email
            ),
            "  name through the real OAuth flow (consent at the emulator, then the service's".to_owned(),
            "  /auth/google/callback). Its first pull is done and notification channel".to_owned(),
            format!("  {channel} is live until {channel_expiry}."),
            String::new(),
            format!(
                "  Swagger UI:  {}/docs  (\"Authorize\" with the API token)",
                self.service
            ),
            format!("  API token:   {}  (user {})", self.api_token, self.email),
            String::new(),
            "Try it from another terminal (this one prints every change to the user's slots):".to_owned(),
            String::new(),
            "1. Create a slot through the API; it is pushed to Google at once:".to_owned(),
            command(&[
                "curl",
                "-s",
                "-X",
                "POST",
                &service("/slots"),
                "-H",
                &user,
                "-H",
                "Content-Type: application/json",
                "-d",
                &slot,
            ]),
            String::new(),
            "2. See it in the emulated Google calendar, as the Google user (or the raw events):".to_owned(),
            google("list", &[]),
            command(&["curl", "-s", &events]),
            String::new(),
            "3. Edit it \"in Google\", as the user would in Google Calendar:".to_owned(),
            google(
                "edit",
                &[
                    "--find",
                    SLOT_TITLE,
                    "--title",
                    EDITED_TITLE,
                    "--start",
                    &moved_start,
                    "--end",
                    &moved_end,
                ],
            ),
            String::new(),
            "4. Watch the slot change (a push notification, then a pull: well under a second):".to_owned(),
            command(&["curl", "-s", &service("/slots"), "-H", &user]),
            String::new(),
            "More: an event made in Google becomes a slot; a deletion in Google deletes the slot;".to_owned(),
            "the sync status; the scheduled jobs (admin):".to_owned(),
            google(
                "create",
                &["--title", "Made in Google", "--start", &at(14, 0), "--end", &at(15, 0)],
            ),
            google("delete", &["--find", EDITED_TITLE]),
            command(&["curl", "-s", &service("/sync/status"), "-H", &user]),
            String::new(),
            "Every change is also POSTed, signed (Standard Webhooks), to the demo's own receiver".to_owned(),
            format!(
                "at {}, which verifies the signature and prints it here as `webhook …`.",
                self.webhook
            ),
            "Follow changes yourself: the feed (each answer waits up to 30 s for the next; pass".to_owned(),
            "its next_cursor as ?after=), or a receiver of your own, registered for as long as it runs:".to_owned(),
            command(&["curl", "-s", &service("/changes?wait=30"), "-H", &user]),
            command(&[
                self.program.as_str(),
                "webhook-listen",
                "--port",
                "9000",
                "--service",
                &self.service,
                "--token",
                &self.api_token,
            ]),
            String::new(),
            command(&["curl", "-s", &service("/admin/jobs"), "-H", &admin]),
            String::new(),
            "Press Ctrl-C to stop; the database and the emulated calendar are thrown away.".to_owned(),
        ];
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_needs_quoting_is_quoted() {
        assert_eq!(
            shell_quote("http://127.0.0.1:8080/slots"),
            "http://127.0.0.1:8080/slots"
        );
        assert_eq!(shell_quote("Demo slot"), "'Demo slot'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn every_command_is_one_line_after_a_prompt() {
        let tour = Tour {
            service: "http://127.0.0.1:8080".into(),
            emulator: "http://127.0.0.1:8085".into(),
            admin_token: "demo-admin-x".into(),
            api_token: "ss_abc".into(),
            email: "demo@example.com".into(),
            database: "/tmp/x/slotsync-demo.db".into(),
            channel: ("c1".into(), "2026-01-01".into()),
            program: "/opt/slot sync/slotsync".into(),
            webhook: "http://127.0.0.1:40000/webhook".into(),
        };
        let text = tour.render();
        let commands: Vec<&str> = text.lines().filter(|l| l.starts_with("$ ")).collect();
        assert_eq!(commands.len(), 11, "{text}");
        assert!(commands.iter().any(|c| c.contains("/changes?wait=30")));
        assert!(commands
            .iter()
            .any(|c| c.starts_with("$ '/opt/slot sync/slotsync' webhook-listen --port 9000")));
        assert!(text.contains("http://127.0.0.1:40000/webhook"), "{text}");
        assert!(commands
            .iter()
            .any(|c| c.starts_with("$ '/opt/slot sync/slotsync' emulator edit")));
        assert!(text.contains("generated ADMIN_TOKEN=demo-admin-x for this run"));
        assert!(text.trim_end().ends_with("thrown away."));
    }
}
