//! `slotsync demo` as a newcomer meets it: run the binary, read what it prints, and follow
//! the printed commands — the curl ones as the same HTTP requests, the `slotsync emulator`
//! ones as child processes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::wait_until;
use slotsync_testkit::{sync_state, SyncState};

/// Settings the demo fixes itself; clear them so the developer's environment cannot leak in.
const CLEARED: [&str; 8] = [
    "DATABASE_URL",
    "BIND_ADDR",
    "PUBLIC_BASE_URL",
    "ADMIN_TOKEN",
    "SECRET_KEY",
    "GOOGLE_EMULATOR_URL",
    "GOOGLE_CLIENT_ID",
    "OAUTH_REDIRECT_URI",
];

/// A running `slotsync demo` and what it printed up to "Press Ctrl-C".
struct Demo {
    child: Child,
    printed: String,
    /// What it printed since: the live view and the webhook receiver's lines.
    later: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Demo {
    /// Starts the demo on free ports, with its temporary files under `dir`.
    async fn start(dir: &Path) -> Demo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slotsync"));
        cmd.args(["demo", "--port", "0", "--emulator-bind", "127.0.0.1:0"])
            .current_dir(dir)
            .env("TMPDIR", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for var in CLEARED {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().expect("the demo starts");
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = String::new();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                printed.push_str(&line);
                printed.push('\n');
                if line.starts_with("Press Ctrl-C") {
                    return true;
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            let _ = child.kill().await;
            panic!(
                "the demo never got ready; it printed:\n{printed}\nstderr:\n{}",
                stderr.await.unwrap()
            );
        }
        // Keep reading (the demo reports slot changes), so its pipe never fills up.
        let later = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = later.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Demo {
            child,
            printed,
            later,
            stderr,
        }
    }

    /// Every printed command (the lines after `$ `), split into words as a shell would.
    fn commands(&self) -> Vec<Vec<String>> {
        self.printed
            .lines()
            .filter_map(|l| l.strip_prefix("$ "))
            .map(shell_words)
            .collect()
    }

    /// The first printed command whose words satisfy `pick`.
    fn command(&self, what: &str, pick: impl Fn(&[String]) -> bool) -> Vec<String> {
        self.commands()
            .into_iter()
            .find(|words| pick(words))
            .unwrap_or_else(|| panic!("no command to {what} in:\n{}", self.printed))
    }

    /// Stops the demo as Ctrl-C would (SIGTERM takes the same path) and waits for it.
    async fn stop(mut self) -> String {
        #[cfg(unix)]
        {
            let pid = self.child.id().expect("still running").to_string();
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(sent.success());
        }
        #[cfg(not(unix))]
        self.child.start_kill().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the demo stops within 30 s")
            .unwrap();
        let stderr = self.stderr.await.unwrap();
        #[cfg(unix)]
        assert!(status.success(), "the demo exited with {status}; stderr:\n{stderr}");
        stderr
    }
}

/// Splits a POSIX shell command line: whitespace separates words, single quotes keep
/// everything literally, a backslash outside quotes escapes the next character.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut in_word) = (Vec::new(), String::new(), false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Sends what a printed `curl` command sends (`-X`, `-H`, `-d`, the URL) and returns the
/// JSON answer.
async fn curl(words: &[String]) -> Value {
    assert_eq!(words[0], "curl", "{words:?}");
    let (mut method, mut url, mut headers, mut body) = ("GET".to_owned(), None, Vec::new(), None);
    let mut args = words[1..].iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-s" => {}
            "-X" => method = args.next().unwrap().clone(),
            "-H" => {
                let (name, value) = args.next().unwrap().split_once(": ").expect("Name: value");
                headers.push((name.to_owned(), value.to_owned()));
            }
            "-d" => body = Some(args.next().unwrap().clone()),
            other if !other.starts_with('-') => url = Some(other.to_owned()),
            other => panic!("the test does not know curl's {other}"),
        }
    }
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url.expect("a URL"));
    for (name, value) in headers {
        req = req.header(name, value);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    let resp = req.send().await.unwrap();
    assert!(resp.status().is_success(), "{words:?} answered {}", resp.status());
    resp.json().await.unwrap()
}

/// Runs a printed `slotsync …` command as a child process; returns its standard output.
async fn run_printed(words: &[String]) -> String {
    let out = Command::new(&words[0]).args(&words[1..]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{words:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn has(words: &[String], word: &str) -> bool {
    words.iter().any(|w| w == word)
}

#[tokio::test]
async fn following_the_demos_printed_commands_shows_a_slot_reach_google_and_a_google_edit_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path()).await;
    assert!(demo.printed.contains("generated ADMIN_TOKEN="), "{}", demo.printed);
    assert!(demo.printed.contains("/docs"), "the Swagger UI link: {}", demo.printed);
    assert!(demo.printed.contains("API token:   ss_"), "{}", demo.printed);

    // 1. Create a slot.
    let create = demo.command("create a slot", |w| {
        has(w, "POST") && w.iter().any(|a| a.ends_with("/slots"))
    });
    let slot = curl(&create).await;
    let id = slot["id"].as_str().expect("the new slot's id").to_owned();

    // 2. It appears in the emulated Google calendar (the raw dump and the `list` command).
    let dump = demo.command("see the events", |w| {
        w[0] == "curl" && w.iter().any(|a| a.contains("/_emulator/"))
    });
    let list_slots = demo.command("watch the slots", |w| {
        w[0] == "curl" && !has(w, "-X") && w.iter().any(|a| a.ends_with("/slots"))
    });
    let slot_now = |title: &'static str| {
        let (list_slots, id) = (&list_slots, &id);
        async move {
            let page = curl(list_slots).await;
            let slot = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == *id)
                .cloned();
            slot.is_some_and(|s| s["title"] == title && sync_state(&s) == SyncState::Synced)
        }
    };
    wait_until("the slot is in Google", Duration::from_secs(10), || async {
        let events = curl(&dump).await;
        let pushed =
            events["items"].as_array().unwrap().iter().any(|e| {
                e["extendedProperties"]["private"]["slotsync_slot"] == id.as_str() && e["summary"] == "Demo slot"
            });
        pushed && slot_now("Demo slot").await
    })
    .await;
    let list = demo.command("list the events", |w| has(w, "emulator") && has(w, "list"));
    assert_eq!(list[0], env!("CARGO_BIN_EXE_slotsync"), "the demo names its own binary");
    let listed = run_printed(&list).await;
    assert!(listed.contains("Demo slot") && listed.contains(&id), "{listed}");

    // 3. Edit it "in Google"; 4. the slot follows within a second.
    let edit = demo.command("edit in Google", |w| has(w, "emulator") && has(w, "edit"));
    let edited = run_printed(&edit).await;
    assert!(edited.contains("Moved in Google"), "{edited}");
    let since = tokio::time::Instant::now();
    wait_until("the Google edit reached the slot", Duration::from_secs(1), || {
        slot_now("Moved in Google")
    })
    .await;
    let took = since.elapsed();
    let page = curl(&list_slots).await;
    let slot = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap();
    let start_word = edit.iter().position(|w| w == "--start").unwrap() + 1;
    let expected = chrono::DateTime::parse_from_rfc3339(&edit[start_word]).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339(slot["start"].as_str().unwrap()).unwrap();
    assert_eq!(start, expected, "the new start came back too: {slot}");
    assert_eq!(slot["version"], 2, "one change, applied once: {slot}");
    eprintln!(
        "the Google edit reached the slot {} ms after the edit command returned",
        took.as_millis()
    );
    // Nothing was written back to Google: one insert (ours), one patch (the Google-side edit).
    let emulator = dump[2].split("/_emulator/").next().unwrap();
    let stats = slotsync_testkit::Google::at(emulator).stats().await;
    assert_eq!(stats["requests"]["events.insert"]["200"], 1, "{stats}");
    assert_eq!(stats["requests"]["events.patch"]["200"], 1, "{stats}");

    // The demo's own receiver got the Google edit as a signed webhook and verified it.
    let later = demo.later.clone();
    let webhook_line = || {
        later
            .lock()
            .unwrap()
            .lines()
            .find(|l| l.contains("webhook slot.updated (origin google)") && l.contains("Moved in Google"))
            .map(str::to_owned)
    };
    wait_until(
        "the Google edit arrived as a signed webhook",
        Duration::from_secs(10),
        || {
            let found = webhook_line().is_some();
            async move { found }
        },
    )
    .await;
    let line = webhook_line().unwrap();
    assert!(line.contains("signature verified"), "{line}");
    assert!(
        !demo.later.lock().unwrap().contains("refused a delivery"),
        "every delivery verified:\n{}",
        demo.later.lock().unwrap()
    );

    let stderr = demo.stop().await;
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("slotsync-demo-"))
        .collect();
    assert!(
        left.is_empty(),
        "the demo leaves its database behind: {left:?}; stderr:\n{stderr}"
    );
}

#[test]
fn the_emulator_still_runs_by_itself_and_has_google_side_subcommands() {
    let bin = env!("CARGO_BIN_EXE_slotsync");
    for args in [
        vec!["demo", "--help"],
        vec!["emulator", "--help"],
        vec!["emulator", "list", "--help"],
        vec!["emulator", "create", "--help"],
        vec!["emulator", "edit", "--help"],
        vec!["emulator", "delete", "--help"],
    ] {
        let out = std::process::Command::new(bin).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
    let mut emulator = std::process::Command::new(bin)
        .args(["emulator", "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(emulator.stdout.take().unwrap());
    let banner = std::io::BufRead::lines(out)
        .take(20)
        .map_while(Result::ok)
        .find(|l| l.starts_with("Google emulator listening on http://127.0.0.1:"));
    emulator.kill().unwrap();
    let _ = emulator.wait();
    assert!(banner.is_some(), "`slotsync emulator --bind` did not start");
}

#[test]
fn a_google_side_command_says_which_emulator_it_cannot_reach() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slotsync"))
        .args([
            "emulator",
            "edit",
            "--url",
            &url,
            "--email",
            "a@example.com",
            "--find",
            "x",
            "--title",
            "y",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&url) && err.contains("slotsync demo"), "{err}");
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn the_readme_lists_every_setting_and_the_ci_test_command() {
    let readme = repo_file("README.md");
    let config = repo_file("src/config.rs");
    let missing: Vec<&str> = config
        .split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|var| !readme.contains(&format!("`{var}`")))
        .collect();
    assert!(missing.is_empty(), "README.md's configuration table lacks {missing:?}");
    let ci = repo_file(".ci/run");
    assert!(
        ci.contains("cargo test --workspace") && readme.contains("\ncargo test --workspace\n"),
        "the README's test command and .ci/run's must stay the same"
    );
    assert!(readme.contains("cargo run --release -- demo"));
}
