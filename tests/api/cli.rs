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
