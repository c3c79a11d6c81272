//! Outbound webhook endpoints and their deliveries: one delivery row per (endpoint,
//! change), created in the transaction of the change ([`enqueue`], called by
//! `changes::append`); a worker claims an endpoint (a lease on its row) and delivers its
//! pending rows oldest first.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::entities::{webhook_deliveries, webhook_endpoints};
use super::StoreError;
use crate::domain::UserId;

pub use webhook_deliveries::Model as DeliveryRow;
pub use webhook_endpoints::Model as EndpointRow;

/// A delivery not yet made (due at `next_attempt_at`).
pub const PENDING: &str = "pending";
/// The endpoint answered 2xx.
pub const DELIVERED: &str = "delivered";
/// Every retry failed.
pub const FAILED: &str = "failed";
/// Not delivered: the endpoint was disabled, or the change was purged first.
pub const DISCARDED: &str = "discarded";

/// Whose endpoints: a user's, or the deployment's (the admin's, receiving every user's
/// changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    User(UserId),
    Deployment,
}

impl Owner {
    fn column(self) -> Option<Uuid> {
        match self {
            Owner::User(u) => Some(u.0),
            Owner::Deployment => None,
        }
    }

    fn filter(self) -> Condition {
        match self {
            Owner::User(u) => Condition::all().add(webhook_endpoints::Column::UserId.eq(u.0)),
            Owner::Deployment => Condition::all().add(webhook_endpoints::Column::UserId.is_null()),
        }
    }
}

/// Most endpoints one owner may have.
pub const MAX_ENDPOINTS: u64 = 10;

/// The event types an endpoint takes (`[]` = all), as stored.
pub fn event_types(row: &EndpointRow) -> Vec<String> {
    serde_json::from_str(&row.event_types).unwrap_or_default()
}

/// A new endpoint of `owner`.
pub async fn insert_endpoint(
    db: &impl ConnectionTrait,
    id: Uuid,
    owner: Owner,
    url: &str,
    types: &[String],
    secret_enc: String,
    now: DateTime<Utc>,
) -> Result<EndpointRow, StoreError> {
    Ok(webhook_endpoints::ActiveModel {
        id: Set(id),
        user_id: Set(owner.column()),
        url: Set(url.to_owned()),
        event_types: Set(serde_json::to_string(types).expect("JSON")),
        enabled: Set(true),
        secret_enc: Set(secret_enc),
        previous_secret_enc: Set(None),
        previous_secret_until: Set(None),
        disabled_reason: Set(None),
        failing_since: Set(None),
        delivering_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// `owner`'s endpoints, oldest first.
pub async fn endpoints(db: &impl ConnectionTrait, owner: Owner) -> Result<Vec<EndpointRow>, StoreError> {
    Ok(webhook_endpoints::Entity::find()
        .filter(owner.filter())
        .order_by_asc(webhook_endpoints::Column::CreatedAt)
        .all(db)
        .await?)
}

/// `owner`'s endpoint `id`.
pub async fn endpoint(db: &impl ConnectionTrait, owner: Owner, id: Uuid) -> Result<Option<EndpointRow>, StoreError> {
    Ok(webhook_endpoints::Entity::find_by_id(id)
        .filter(owner.filter())
        .one(db)
        .await?)
}

/// What a `PATCH` changes.
#[derive(Debug, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Applies `change` to `owner`'s endpoint `id`. Enabling clears the reason it was disabled
/// and its failure streak; disabling discards nothing (pending deliveries wait).
pub async fn update_endpoint(
    db: &impl ConnectionTrait,
    owner: Owner,
    id: Uuid,
    change: EndpointChange,
    now: DateTime<Utc>,
) -> Result<Option<EndpointRow>, StoreError> {
    let Some(row) = endpoint(db, owner, id).await? else {
        return Ok(None);
    };
    let mut active: webhook_endpoints::ActiveModel = row.into();
    if let Some(url) = change.url {
        active.url = Set(url);
    }
    if let Some(types) = change.event_types {
        active.event_types = Set(serde_json::to_string(&types).expect("JSON"));
    }
    if let Some(enabled) = change.enabled {
        active.enabled = Set(enabled);
        if enabled {
            active.disabled_reason = Set(None);
            active.failing_since = Set(None);
        }
    }
    active.updated_at = Set(now);
    Ok(Some(active.update(db).await?))
}

/// Deletes `owner`'s endpoint `id` and its deliveries. Returns whether it existed.
pub async fn delete_endpoint(db: &impl ConnectionTrait, owner: Owner, id: Uuid) -> Result<bool, StoreError> {
    if endpoint(db, owner, id).await?.is_none() {
        return Ok(false);
    }
    webhook_deliveries::Entity::delete_many()
        .filter(webhook_deliveries::Column::EndpointId.eq(id))
        .exec(db)
        .await?;
    Ok(webhook_endpoints::Entity::delete_many()
        .filter(webhook_endpoints::Column::Id.eq(id))
        .filter(owner.filter())
        .exec(db)
        .await?
        .rows_affected
        > 0)
}

/// Replaces the signing secret; the old one keeps signing (beside the new) until `until`.
pub async fn rotate_secret(
    db: &impl ConnectionTrait,
    owner: Owner,
    id: Uuid,
    new_enc: String,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<EndpointRow>, StoreError> {
    let Some(row) = endpoint(db, owner, id).await? else {
        return Ok(None);
    };
    let old = row.secret_enc.clone();
    let mut active: webhook_endpoints::ActiveModel = row.into();
    active.previous_secret_enc = Set(Some(old));
    active.previous_secret_until = Set(Some(until));
    active.secret_enc = Set(new_enc);
    active.updated_at = Set(now);
    Ok(Some(active.update(db).await?))
}

/// Creates the deliveries of `user`'s new changes `(seq, type)` for every enabled
/// endpoint of the user, and every deployment-wide one, that takes their type. Runs in
/// the changes' transaction.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    user: UserId,
    changes: &[(i64, &'static str)],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let targets = webhook_endpoints::Entity::find()
        .filter(
            Condition::any()
                .add(webhook_endpoints::Column::UserId.eq(user.0))
                .add(webhook_endpoints::Column::UserId.is_null()),
        )
        .filter(webhook_endpoints::Column::Enabled.eq(true))
        .all(db)
        .await?;
    if targets.is_empty() {
        return Ok(0);
    }
    let mut rows = Vec::new();
    for target in &targets {
        let types = event_types(target);
        for (seq, kind) in changes {
            if types.is_empty() || types.iter().any(|t| t == kind) {
                rows.push(webhook_deliveries::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    endpoint_id: Set(target.id),
                    user_id: Set(user.0),
                    seq: Set(*seq),
                    event_type: Set((*kind).to_owned()),
                    state: Set(PENDING.to_owned()),
                    attempts: Set(0),
                    next_attempt_at: Set(now),
                    last_status: Set(None),
                    last_error: Set(None),
                    created_at: Set(now),
                    delivered_at: Set(None),
                });
            }
        }
    }
    let n = rows.len() as u64;
    if n > 0 {
        webhook_deliveries::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(n)
}

/// Claims up to `max` enabled endpoints whose oldest pending delivery is due, each for
/// `lease` (another worker, here or on another instance, leaves them alone meanwhile).
pub async fn claim_due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    max: u64,
) -> Result<Vec<EndpointRow>, StoreError> {
    let due: Vec<Uuid> = webhook_deliveries::Entity::find()
        .select_only()
        .column(webhook_deliveries::Column::EndpointId)
        .distinct()
        .filter(webhook_deliveries::Column::State.eq(PENDING))
        .filter(webhook_deliveries::Column::NextAttemptAt.lte(now))
        .limit(max * 4)
        .into_tuple()
        .all(db)
        .await?;
    let mut claimed = Vec::new();
    for id in due {
        if claimed.len() as u64 >= max {
            break;
        }
        // In order: only when the endpoint's oldest pending delivery is the due one.
        let Some(oldest) = next_pending(db, id, None).await? else {
            continue;
        };
        if oldest.next_attempt_at > now {
            continue;
        }
        let taken = webhook_endpoints::Entity::update_many()
            .col_expr(
                webhook_endpoints::Column::DeliveringUntil,
                Expr::value(Some(now + lease)),
            )
            .filter(webhook_endpoints::Column::Id.eq(id))
            .filter(webhook_endpoints::Column::Enabled.eq(true))
            .filter(
                Condition::any()
                    .add(webhook_endpoints::Column::DeliveringUntil.is_null())
                    .add(webhook_endpoints::Column::DeliveringUntil.lt(now)),
            )
            .exec(db)
            .await?
            .rows_affected;
        if taken == 1 {
            if let Some(row) = webhook_endpoints::Entity::find_by_id(id).one(db).await? {
                claimed.push(row);
            }
        }
    }
    Ok(claimed)
}

/// The endpoint's oldest pending delivery: in the user's change order (one user's
/// endpoint, or, for a deployment-wide one, `user`'s changes when given), else by commit
/// time (a deployment-wide endpoint's deliveries of several users).
pub async fn next_pending(
    db: &impl ConnectionTrait,
    endpoint: Uuid,
    user: Option<UserId>,
) -> Result<Option<DeliveryRow>, StoreError> {
    let mut query = webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint))
        .filter(webhook_deliveries::Column::State.eq(PENDING));
    query = match user {
        Some(u) => query
            .filter(webhook_deliveries::Column::UserId.eq(u.0))
            .order_by_asc(webhook_deliveries::Column::Seq),
        None => query
            .order_by_asc(webhook_deliveries::Column::CreatedAt)
            .order_by_asc(webhook_deliveries::Column::Seq),
    };
    Ok(query.one(db).await?)
}

/// Records an attempt of `delivery`: `state` (`delivered`, or `pending` again with the
/// next attempt at `next`, or `failed`/`discarded`), with what the endpoint answered.
pub async fn record_attempt(
    db: &impl ConnectionTrait,
    delivery: &DeliveryRow,
    state: &str,
    next: DateTime<Utc>,
    status: Option<u16>,
    error: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    webhook_deliveries::Entity::update_many()
        .col_expr(webhook_deliveries::Column::State, Expr::value(state))
        .col_expr(
            webhook_deliveries::Column::Attempts,
            Expr::col(webhook_deliveries::Column::Attempts).add(1),
        )
        .col_expr(webhook_deliveries::Column::NextAttemptAt, Expr::value(next))
        .col_expr(
            webhook_deliveries::Column::LastStatus,
            Expr::value(status.map(i32::from)),
        )
        .col_expr(webhook_deliveries::Column::LastError, Expr::value(error))
        .col_expr(
            webhook_deliveries::Column::DeliveredAt,
            Expr::value((state == DELIVERED).then_some(now)),
        )
        .filter(webhook_deliveries::Column::Id.eq(delivery.id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records how the endpoint did: a success ends its failure streak; a failure starts one
/// (if none); `disable` turns it off with the reason (its pending deliveries wait).
pub async fn record_endpoint(
    db: &impl ConnectionTrait,
    endpoint: Uuid,
    succeeded: bool,
    disable: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut update = webhook_endpoints::Entity::update_many();
    update = if succeeded {
        update.col_expr(
            webhook_endpoints::Column::FailingSince,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
    } else {
        update.col_expr(
            webhook_endpoints::Column::FailingSince,
            Expr::case(
                webhook_endpoints::Column::FailingSince.is_null(),
                Expr::value(Some(now)),
            )
            .finally(Expr::col(webhook_endpoints::Column::FailingSince))
            .into(),
        )
    };
    if let Some(reason) = disable {
        update = update
            .col_expr(webhook_endpoints::Column::Enabled, Expr::value(false))
            .col_expr(
                webhook_endpoints::Column::DisabledReason,
                Expr::value(Some(reason.to_owned())),
            )
            .col_expr(webhook_endpoints::Column::UpdatedAt, Expr::value(now));
    }
    update
        .filter(webhook_endpoints::Column::Id.eq(endpoint))
        .exec(db)
        .await?;
    Ok(())
}

/// Extends the caller's lease on the endpoint to `until`, if it still holds it (its lease
/// has not run out at `now`: nobody else can have claimed it). Answers whether it did.
pub async fn extend_lease(
    db: &impl ConnectionTrait,
    endpoint: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let extended = webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::DeliveringUntil, Expr::value(Some(until)))
        .filter(webhook_endpoints::Column::Id.eq(endpoint))
        .filter(webhook_endpoints::Column::DeliveringUntil.gte(now))
        .exec(db)
        .await?
        .rows_affected;
    Ok(extended == 1)
}

/// Gives the endpoint's lease back.
pub async fn release(db: &impl ConnectionTrait, endpoint: Uuid) -> Result<(), StoreError> {
    webhook_endpoints::Entity::update_many()
        .col_expr(
            webhook_endpoints::Column::DeliveringUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(webhook_endpoints::Column::Id.eq(endpoint))
        .exec(db)
        .await?;
    Ok(())
}

/// The endpoint's deliveries, newest first, at most `limit` (the caller checked that the
/// endpoint is theirs).
pub async fn deliveries(db: &impl ConnectionTrait, endpoint: Uuid, limit: u64) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint))
        .order_by_desc(webhook_deliveries::Column::CreatedAt)
        .order_by_desc(webhook_deliveries::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

/// Puts a delivery back in line, due now (same id: the same `webhook-id`). Returns the
/// row, or `None` when the endpoint (the caller checked it is theirs) has no such delivery.
pub async fn retry(
    db: &impl ConnectionTrait,
    endpoint: Uuid,
    delivery: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<DeliveryRow>, StoreError> {
    let updated = webhook_deliveries::Entity::update_many()
        .col_expr(webhook_deliveries::Column::State, Expr::value(PENDING))
        .col_expr(webhook_deliveries::Column::NextAttemptAt, Expr::value(now))
        .filter(webhook_deliveries::Column::Id.eq(delivery))
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint))
        .exec(db)
        .await?
        .rows_affected;
    if updated == 0 {
        return Ok(None);
    }
    Ok(webhook_deliveries::Entity::find_by_id(delivery).one(db).await?)
}

/// An endpoint's health: its row, its deliveries waiting and failed for good, and when the
/// last one was delivered.
#[derive(Debug, Clone)]
pub struct Health {
    pub endpoint: EndpointRow,
    pub pending: u64,
    pub failed: u64,
    pub last_delivered_at: Option<DateTime<Utc>>,
}

/// The health of each of `user`'s endpoints.
pub async fn health(db: &impl ConnectionTrait, user: UserId) -> Result<Vec<Health>, StoreError> {
    let mut out = Vec::new();
    for endpoint in endpoints(db, Owner::User(user)).await? {
        let counts: Vec<(String, i64)> = webhook_deliveries::Entity::find()
            .select_only()
            .column(webhook_deliveries::Column::State)
            .column_as(webhook_deliveries::Column::Id.count(), "n")
            .filter(webhook_deliveries::Column::EndpointId.eq(endpoint.id))
            .filter(webhook_deliveries::Column::State.is_in([PENDING, FAILED]))
            .group_by(webhook_deliveries::Column::State)
            .into_tuple()
            .all(db)
            .await?;
        let count = |state: &str| {
            counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0))
        };
        let last_delivered_at: Option<Option<DateTime<Utc>>> = webhook_deliveries::Entity::find()
            .select_only()
            .column_as(webhook_deliveries::Column::DeliveredAt.max(), "at")
            .filter(webhook_deliveries::Column::EndpointId.eq(endpoint.id))
            .into_tuple()
            .one(db)
            .await?;
        out.push(Health {
            pending: count(PENDING),
            failed: count(FAILED),
            last_delivered_at: last_delivered_at.flatten(),
            endpoint,
        });
    }
    Ok(out)
}
