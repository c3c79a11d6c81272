//! Many connected users at once, for the fleet tests and benchmarks: the accounts are made
//! in bulk at the emulator (`POST /_emulator/users/bulk`), and the service's rows (user,
//! connection with sealed tokens, sync state) are written straight into its database, as
//! thousands of OAuth flows would have left them — in seconds instead of hours.

use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use slotsync::crypto::{Keys, Secret};
use slotsync::domain::ConnectionStatus;
use slotsync::store::entities::{google_connections, sync_states, users};
use uuid::Uuid;

use crate::google::Google;
use crate::settings::SECRET_KEY;

/// Rows written per statement.
const CHUNK: usize = 500;

/// Connects `count` users `{prefix}{n}@bulk.example.com` (n from 0) to their primary
/// calendar: accounts and grants at `google`, rows in `db` (migrated already) sealed with
/// the kit's `SECRET_KEY`. Their fallback pulls are not scheduled yet (the next
/// `fallback_sync` run gives each a phase). Returns the users' ids, in order.
pub async fn seed_connections(db: &impl ConnectionTrait, google: &Google, prefix: &str, count: u64) -> Vec<Uuid> {
    let accounts = google.bulk_users(prefix, 0, count).await;
    assert_eq!(accounts.len() as u64, count, "the emulator made every account");
    let keys = Keys::derive(SECRET_KEY.as_bytes());
    let now = Utc::now();
    let mut ids = Vec::with_capacity(accounts.len());
    for chunk in accounts.chunks(CHUNK) {
        let mut user_rows = Vec::new();
        let mut connection_rows = Vec::new();
        let mut state_rows = Vec::new();
        for account in chunk {
            let id = Uuid::new_v4();
            ids.push(id);
            let text = |key: &str| {
                account[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{key} in {account}"))
                    .to_owned()
            };
            let expires_in = account["expires_in"].as_i64().unwrap_or(3599);
            user_rows.push(users::ActiveModel {
                id: Set(id),
                email: Set(text("email")),
                display_name: Set(None),
                api_token_hash: Set(format!("bulk-{}", id.simple())),
                created_at: Set(now),
            });
            connection_rows.push(google_connections::ActiveModel {
                user_id: Set(id),
                google_email: Set(Some(text("email"))),
                calendar_id: Set(text("calendar_id")),
                access_token_enc: Set(Some(keys.encrypt(&text("access_token"), id, Secret::AccessToken))),
                refresh_token_enc: Set(Some(keys.encrypt(&text("refresh_token"), id, Secret::RefreshToken))),
                token_expires_at: Set(Some(now + Duration::seconds(expires_in))),
                granted_scopes: Set(slotsync::google::REQUESTED_SCOPES.join(" ")),
                status: Set(ConnectionStatus::Active),
                connected_at: Set(now),
                last_error: Set(None),
                google_sub: Set(Some(text("sub"))),
                home_generation: Set(0),
            });
            state_rows.push(sync_states::ActiveModel {
                user_id: Set(id),
                consecutive_failures: Set(0),
                fallback_pulls: Set(0),
                ..Default::default()
            });
        }
        users::Entity::insert_many(user_rows)
            .exec_without_returning(db)
            .await
            .expect("users are inserted");
        google_connections::Entity::insert_many(connection_rows)
            .exec_without_returning(db)
            .await
            .expect("connections are inserted");
        sync_states::Entity::insert_many(state_rows)
            .exec_without_returning(db)
            .await
            .expect("sync states are inserted");
    }
    ids
}

/// The emails [`seed_connections`] gives its users.
pub fn seeded_email(prefix: &str, n: u64) -> String {
    format!("{prefix}{n}@bulk.example.com")
}
