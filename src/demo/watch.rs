//! The demo's live view: reads the demo user's slots through the API, as a client would,
//! and prints a line for each change (created, pushed to Google, changed, deleted).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

/// How often the slots are read: about 200 requests a minute, well inside the user's
/// inbound limit, and fine-grained enough to show a sub-second round trip.
const POLL: Duration = Duration::from_millis(300);

/// What the watcher remembers of a slot.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    version: i64,
    title: String,
    start: String,
    end: String,
    state: String,
    deleted: bool,
}

impl Seen {
    fn from_json(slot: &Value) -> Self {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Self {
            version: slot["version"].as_i64().unwrap_or_default(),
            title: text(&slot["title"]),
            start: text(&slot["start"]),
            end: text(&slot["end"]),
            state: text(&slot["sync"]["state"]),
            deleted: slot["deleted"].as_bool().unwrap_or(false),
        }
    }
}

/// Prints changes to the user's slots until the task is dropped.
pub async fn print_slot_changes(client: reqwest::Client, service: String, token: String) {
    let mut known: HashMap<String, Seen> = HashMap::new();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(slots) = read_slots(&client, &service, &token).await else {
            continue;
        };
        for slot in &slots {
            let id = slot["id"].as_str().unwrap_or_default().to_owned();
            let now = Seen::from_json(slot);
            let before = known.get(&id);
            for line in describe(&id, before, &now, slot) {
                say(&line);
            }
            known.insert(id, now);
        }
    }
}

/// Prints one line of the live view, with the time.
pub fn say(line: &str) {
    println!("  » {} {line}", Utc::now().format("%H:%M:%S%.3f"));
}

/// One page of up to 500 slots, deleted ones included (a demo user has a handful).
async fn read_slots(client: &reqwest::Client, service: &str, token: &str) -> Option<Vec<Value>> {
    let resp = client
        .get(format!("{service}/slots?include_deleted=true&limit=500"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let page: Value = resp.json().await.ok()?;
    page["items"].as_array().cloned()
}

/// The lines that tell what happened between `before` and `now`.
fn describe(id: &str, before: Option<&Seen>, now: &Seen, slot: &Value) -> Vec<String> {
    let short = format!("slot {}", id.get(..8).unwrap_or(id));
    let mut lines = Vec::new();
    let Some(before) = before else {
        let origin = if slot["source"] == "google" {
            "imported from an event made in Google"
        } else {
            "created through the API"
        };
        lines.push(format!(
            "{short} {:?} {} → {} {origin} (sync: {})",
            now.title, now.start, now.end, now.state
        ));
        return lines;
    };
    if now.deleted && !before.deleted {
        lines.push(format!("{short} {:?} deleted", now.title));
    } else if now.version != before.version {
        let mut changes = Vec::new();
        for (field, old, new) in [
            ("title", &before.title, &now.title),
            ("start", &before.start, &now.start),
            ("end", &before.end, &now.end),
        ] {
            if old != new {
                changes.push(format!("{field} {old:?} → {new:?}"));
            }
        }
        if changes.is_empty() {
            changes.push("description or location".into());
        }
        lines.push(format!(
            "{short} changed (version {}): {} (sync: {})",
            now.version,
            changes.join(", "),
            now.state
        ));
    }
    if now.state != before.state && now.state == "synced" && !now.deleted {
        let event = slot["sync"]["google_event_id"].as_str().unwrap_or("?");
        lines.push(format!("{short} is in Google as it is now (event {event})"));
    } else if now.state != before.state && now.state != "pending" {
        let error = slot["sync"]["last_error"].as_str().unwrap_or("");
        lines.push(format!("{short} sync: {} {error}", now.state));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slot(version: i64, title: &str, state: &str) -> Value {
        json!({"id": "0123456789abcdef", "version": version, "title": title,
               "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z",
               "source": "app", "deleted": false,
               "sync": {"state": state, "google_event_id": "abc"}})
    }

    #[test]
    fn a_google_edit_is_told_as_a_change_of_title() {
        let before = Seen::from_json(&slot(1, "Demo slot", "synced"));
        let after = slot(2, "Moved in Google", "synced");
        let lines = describe("0123456789abcdef", Some(&before), &Seen::from_json(&after), &after);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(r#"title "Demo slot" → "Moved in Google""#),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn a_push_is_told_once() {
        let before = Seen::from_json(&slot(1, "Demo slot", "pending"));
        let after = slot(1, "Demo slot", "synced");
        let lines = describe("0123456789abcdef", Some(&before), &Seen::from_json(&after), &after);
        assert_eq!(
            lines,
            vec!["slot 01234567 is in Google as it is now (event abc)".to_owned()]
        );
        let again = describe(
            "0123456789abcdef",
            Some(&Seen::from_json(&after)),
            &Seen::from_json(&after),
            &after,
        );
        assert!(again.is_empty());
    }
}
