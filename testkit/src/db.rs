//! A database per test (or per benchmark run), removed afterwards.

use sea_orm::{ConnectionTrait, Database, DbErr};

/// A database that exists for one test and is removed afterwards: the SQLite directory
/// goes with the value, a PostgreSQL database is dropped when the value is dropped (or by
/// [`TestDb::remove`]).
pub enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
    /// Another instance's database: its owner removes it.
    Shared,
}

/// Creates the test's database and returns its URL: a fresh PostgreSQL database
/// (`slotsync_test_…`) under the server of `TEST_DATABASE_URL` when it is set, a SQLite
/// file in a temporary directory otherwise.
pub async fn test_database() -> (String, TestDb) {
    TestDb::from_env(&["TEST_DATABASE_URL"], "slotsync_test").await
}

/// The first of `variables` that is set and not blank.
pub fn url_from_env(variables: &[&str]) -> Option<String> {
    variables
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
}

impl TestDb {
    /// PostgreSQL (a database named `{prefix}_…`) under the server named by the first of
    /// `variables` that is set, SQLite otherwise.
    pub async fn from_env(variables: &[&str], prefix: &str) -> (String, TestDb) {
        match url_from_env(variables) {
            Some(admin_url) => TestDb::postgres(&admin_url, prefix).await,
            None => TestDb::sqlite(),
        }
    }

    /// A SQLite file in a temporary directory (`TMPDIR`).
    pub fn sqlite() -> (String, TestDb) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("slotsync.db").display());
        (url, TestDb::Sqlite(dir))
    }

    /// A fresh database `{prefix}_<uuid>` created under the PostgreSQL server of
    /// `admin_url`; returns its URL.
    pub async fn postgres(admin_url: &str, prefix: &str) -> (String, TestDb) {
        assert!(
            admin_url.starts_with("postgres://") || admin_url.starts_with("postgresql://"),
            "not a PostgreSQL URL (postgres://…): {admin_url}"
        );
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let db = Database::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("the PostgreSQL server of {admin_url} answers: {e}"));
        db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("can create the database {name}: {e}"));
        let _ = db.close().await;
        let mut url = url::Url::parse(admin_url).expect("the PostgreSQL URL parses");
        url.set_path(&format!("/{name}"));
        let db = TestDb::Postgres {
            admin_url: admin_url.to_owned(),
            name,
        };
        (url.to_string(), db)
    }

    /// `SQLite` or `PostgreSQL`, for reports.
    pub fn describe(&self) -> &'static str {
        match self {
            TestDb::Sqlite(_) => "SQLite",
            TestDb::Postgres { .. } => "PostgreSQL",
            TestDb::Shared => "shared",
        }
    }

    /// Removes the database now, saying so on stderr if it cannot (dropping the value
    /// removes it too, silently).
    pub async fn remove(mut self) {
        let TestDb::Postgres { admin_url, name } = &mut self else {
            return;
        };
        let (admin_url, name) = (std::mem::take(admin_url), std::mem::take(name));
        // What is left owns nothing (two empty strings): `Drop` must not run on it.
        std::mem::forget(self);
        if let Err(e) = drop_database(&admin_url, &name).await {
            eprintln!("could not drop the database {name}: {e}");
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), DbErr> {
    let db = Database::connect(admin_url).await?;
    db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    Ok(())
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let _ = drop_database(&admin_url, &name).await;
                });
            })
            .join();
        }
    }
}
