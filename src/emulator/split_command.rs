//! `slotsync emulator split`: "this and following" on a running emulator, as the Google
//! user would do it in Google Calendar, through the control route
//! `POST /_emulator/calendars/{calendarId}/events/{eventId}/split`.

use serde_json::{json, Map, Value};

/// Options of `slotsync emulator split`.
#[derive(Debug, Clone, clap::Args)]
pub struct SplitArgs {
    /// Base URL of the running emulator (`slotsync demo` prints it).
    #[arg(long, env = "GOOGLE_EMULATOR_URL", default_value = "http://127.0.0.1:8085")]
    pub url: String,
    /// The Google user whose series it is.
    #[arg(long)]
    pub email: String,
    /// Calendar id; the user's primary calendar (its id is the email) when absent.
    #[arg(long)]
    pub calendar: Option<String>,
    /// The recurring event (the series' master id).
    #[arg(long)]
    pub event: String,
    /// The occurrence to split at: its original start as RFC 3339
    /// (`2026-03-16T09:00:00+01:00`), a date for all-day series, or an instance id suffix.
    #[arg(long)]
    pub at: String,
    /// New title for this and the following occurrences.
    #[arg(long)]
    pub title: Option<String>,
    /// Further changes to the new series, as a JSON object with patch semantics
    /// (e.g. `'{"location": "Room 2"}'`).
    #[arg(long)]
    pub changes: Option<String>,
}

impl SplitArgs {
    /// The control route's request body.
    pub fn body(&self) -> anyhow::Result<Value> {
        let mut changes: Map<String, Value> = match &self.changes {
            Some(raw) => {
                serde_json::from_str(raw).map_err(|e| anyhow::anyhow!("--changes is not a JSON object: {e}"))?
            }
            None => Map::new(),
        };
        if let Some(title) = &self.title {
            changes.insert("summary".to_owned(), json!(title));
        }
        Ok(json!({"original_start": self.at, "changes": changes}))
    }
}

/// Splits the series and prints both parts.
pub async fn run_split(args: SplitArgs) -> anyhow::Result<()> {
    let calendar = args.calendar.clone().unwrap_or_else(|| args.email.clone());
    let path_part = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let url = format!(
        "{}/_emulator/calendars/{}/events/{}/split",
        args.url.trim_end_matches('/'),
        path_part(&calendar),
        path_part(&args.event)
    );
    let response = reqwest::Client::new().post(&url).json(&args.body()?).send().await?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!("the emulator refused the split ({status}): {}", answer["error"]);
    }
    let rules = |v: &Value| v["recurrence"].to_string();
    println!(
        "series {} now ends before {}: {}",
        args.event,
        args.at,
        rules(&answer["master"])
    );
    println!(
        "new series {} from {}: {}",
        answer["series"]["id"].as_str().unwrap_or_default(),
        answer["series"]["start"]["dateTime"]
            .as_str()
            .or(answer["series"]["start"]["date"].as_str())
            .unwrap_or_default(),
        rules(&answer["series"])
    );
    println!(
        "exceptions moved: {}, dropped: {}",
        answer["exceptions_moved"], answer["exceptions_dropped"]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_joins_the_changes_of_the_new_series() {
        let args = SplitArgs {
            url: "http://127.0.0.1:8085".into(),
            email: "ann@example.com".into(),
            calendar: None,
            event: "abc".into(),
            at: "2026-03-16".into(),
            title: Some("Later".into()),
            changes: Some(r#"{"location": "Room 2"}"#.into()),
        };
        assert_eq!(
            args.body().unwrap(),
            json!({"original_start": "2026-03-16", "changes": {"location": "Room 2", "summary": "Later"}})
        );
    }
}
