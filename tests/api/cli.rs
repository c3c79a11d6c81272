//! The binary as an operator meets it.

use std::process::Command;

fn slotsync() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slotsync"));
    for var in ["ADMIN_TOKEN", "SECRET_KEY", "DATABASE_URL", "BIND_ADDR"] {
        c.env_remove(var);
    }
    c
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["openapi", "--help"],
        vec!["webhook-listen", "--help"],
    ] {
        let out = slotsync().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{args:?}: {text}");
    }
    let out = slotsync().args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for var in [
        "DATABASE_URL",
        "ADMIN_TOKEN",
        "SECRET_KEY",
        "BIND_ADDR",
        "PUBLIC_BASE_URL",
    ] {
        assert!(text.contains(var), "serve --help does not mention {var}");
    }
}

#[test]
fn a_missing_secret_stops_startup_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let out = slotsync()
        .current_dir(dir.path())
        .env("ADMIN_TOKEN", "admin-token-0123456789")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SECRET_KEY") && err.contains("32"), "{err}");
}

#[test]
fn a_weak_admin_token_stops_startup_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let out = slotsync()
        .current_dir(dir.path())
        .args(["serve", "--admin-token", "short"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ADMIN_TOKEN") && err.contains("16"), "{err}");
}

#[tokio::test]
async fn migrate_creates_every_table() {
    use sea_orm::{ConnectionTrait, Statement};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let out = slotsync()
        .args([
            "migrate",
            "--database-url",
            &format!("sqlite://{}?mode=rwc", db.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Read the schema through SQLite itself (in WAL mode it may still sit in the -wal file).
    let conn = sea_orm::Database::connect(format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT name FROM sqlite_master".to_owned(),
        ))
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.try_get("", "name").unwrap()).collect();
    for table in [
        "users",
        "google_connections",
        "slots",
        "sync_states",
        "channels",
        "sync_events",
        "idempotency_keys",
        "idx_slots_push_due",
        "idx_slots_user_event",
    ] {
        assert!(names.iter().any(|n| n == table), "{table} missing from {names:?}");
    }
}

#[test]
fn openapi_prints_the_spec() {
    let out = slotsync().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["info"]["title"], "slotsync");
}

/// `slotsync webhook-listen --token …` as a newcomer runs it: it registers itself as the
/// user's endpoint, verifies and prints each delivery, and removes the endpoint when it
/// is stopped (SIGTERM, as Ctrl-C).
#[cfg(unix)]
#[tokio::test]
async fn webhook_listen_registers_itself_prints_verified_deliveries_and_cleans_up() {
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, BufReader};

    let app = crate::helpers::spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slotsync"))
        .args([
            "webhook-listen",
            "--port",
            "0",
            "--service",
            &app.address,
            "--token",
            &user.token,
        ])
        .env_remove("WEBHOOK_SECRET")
        .env_remove("SLOTSYNC_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let printed = Arc::new(Mutex::new(String::new()));
    let sink = printed.clone();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    let seen = |what: &'static str| {
        let printed = printed.clone();
        move || {
            let found = printed.lock().unwrap().contains(what);
            async move { found }
        }
    };
    crate::helpers::wait_until(
        "the receiver is listening",
        Duration::from_secs(60),
        seen("listening on"),
    )
    .await;
    let endpoints = app.get_json(&user, "/webhook-endpoints").await;
    assert_eq!(
        endpoints.as_array().unwrap().len(),
        1,
        "it registered itself: {endpoints}"
    );

    app.create_slot(
        &user,
        &serde_json::json!({"title": "Office hours", "start": "2026-12-01T09:00:00Z",
                            "end": "2026-12-01T10:00:00Z", "timezone": "UTC"}),
    )
    .await;
    crate::helpers::wait_until(
        "the delivery is printed",
        Duration::from_secs(30),
        seen("webhook slot.created (origin api)"),
    )
    .await;
    let text = printed.lock().unwrap().clone();
    assert!(
        text.contains(r#""Office hours""#) && text.contains("signature verified"),
        "{text}"
    );

    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("it stops")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(printed.lock().unwrap().contains("deleted webhook endpoint"));
    assert_eq!(app.get_json(&user, "/webhook-endpoints").await, serde_json::json!([]));
}

/// Without a secret or a token there is nothing to verify with: a clear error.
#[test]
fn webhook_listen_without_a_secret_says_what_to_pass() {
    let out = slotsync()
        .args(["webhook-listen", "--port", "0"])
        .env_remove("WEBHOOK_SECRET")
        .env_remove("SLOTSYNC_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--secret") && err.contains("--token"), "{err}");
}
