//! `migration [up|down|status|fresh]` against `DATABASE_URL`.
//! The service migrates itself at startup; this is for operators who prefer a separate step.

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::Database;

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://slotsync.db?mode=rwc".into());
    let command = std::env::args().nth(1).unwrap_or_else(|| "up".into());
    let db = match Database::connect(&url).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("cannot connect to DATABASE_URL: {e}");
            std::process::exit(1);
        }
    };
    let result = match command.as_str() {
        "up" => Migrator::up(&db, None).await,
        "down" => Migrator::down(&db, Some(1)).await,
        "status" => Migrator::status(&db).await,
        "fresh" => Migrator::fresh(&db).await,
        other => {
            eprintln!("unknown command `{other}`; expected up, down, status or fresh");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("migration failed: {e}");
        std::process::exit(1);
    }
}
