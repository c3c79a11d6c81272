//! Users' sync settings (`sync_settings`): what each user chose; no row, or a null
//! column, follows the deployment's default.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait, Set};

use super::entities::sync_settings;
use super::StoreError;
use crate::domain::import_filter::{SpecialType, TypePolicies, TypePolicy};
use crate::domain::{ChosenSettings, ConflictPolicy, UserId};

/// What `user` chose (nothing when they never set anything).
pub async fn find(db: &impl ConnectionTrait, user: UserId) -> Result<ChosenSettings, StoreError> {
    let row = sync_settings::Entity::find_by_id(user.0).one(db).await?;
    Ok(row.map(|r| chosen(&r)).unwrap_or_default())
}

/// Stores `chosen` as `user`'s settings (replacing what was there).
pub async fn save(
    db: &impl ConnectionTrait,
    user: UserId,
    chosen: &ChosenSettings,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let types: serde_json::Map<String, serde_json::Value> = chosen
        .event_types
        .iter()
        .map(|(t, p)| (t.as_str().to_owned(), serde_json::Value::from(p.as_str())))
        .collect();
    let row = sync_settings::ActiveModel {
        user_id: Set(user.0),
        import: Set(chosen.import),
        skip_free: Set(chosen.skip_free),
        skip_private: Set(chosen.skip_private),
        skip_declined: Set(chosen.skip_declined),
        event_types: Set((!types.is_empty()).then(|| serde_json::Value::Object(types).to_string())),
        conflict_policy: Set(chosen.conflict_policy.map(|p| p.as_str().to_owned())),
        full_sync_window_days: Set(chosen
            .full_sync_window_days
            .map(|d| i32::try_from(d).unwrap_or(i32::MAX))),
        updated_at: Set(now),
    };
    sync_settings::Entity::insert(row)
        .on_conflict(
            OnConflict::column(sync_settings::Column::UserId)
                .update_columns([
                    sync_settings::Column::Import,
                    sync_settings::Column::SkipFree,
                    sync_settings::Column::SkipPrivate,
                    sync_settings::Column::SkipDeclined,
                    sync_settings::Column::EventTypes,
                    sync_settings::Column::ConflictPolicy,
                    sync_settings::Column::FullSyncWindowDays,
                    sync_settings::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// A stored row as choices; a value this version cannot read follows the default.
fn chosen(row: &sync_settings::Model) -> ChosenSettings {
    let event_types: TypePolicies = row
        .event_types
        .as_deref()
        .and_then(|raw| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw).ok())
        .map(|map| {
            map.iter()
                .filter_map(|(t, p)| {
                    let kind = t.parse::<SpecialType>().ok()?;
                    let policy = p.as_str()?.parse::<TypePolicy>().ok()?;
                    Some((kind, policy))
                })
                .collect()
        })
        .unwrap_or_default();
    ChosenSettings {
        import: row.import,
        skip_free: row.skip_free,
        skip_private: row.skip_private,
        skip_declined: row.skip_declined,
        event_types,
        conflict_policy: row
            .conflict_policy
            .as_deref()
            .and_then(|p| p.parse::<ConflictPolicy>().ok()),
        full_sync_window_days: row.full_sync_window_days.and_then(|d| u32::try_from(d).ok()),
    }
}
