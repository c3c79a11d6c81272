//! Outbound webhook endpoints: where the caller's changes are delivered, signed as the
//! Standard Webhooks specification says. The deliveries are made by
//! `sync::webhooks::Deliverer`; see `docs/changes.md`.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::auth::OwnerAuth;
use super::changes::ChangeType;
use super::error::{answers::*, ApiError, Fails};
use super::path_id::PathUuid;
use super::{pagination, ApiTags};
use crate::crypto::Secret;
use crate::domain::ChangeKind;
use crate::state::AppState;
use crate::store::webhooks::{self, DeliveryRow, EndpointChange, EndpointRow, Owner, MAX_ENDPOINTS};
use crate::sync::webhooks::{check_target, new_secret, webhook_id};

/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;

/// A new endpoint.
#[derive(Debug, Object)]
pub struct NewWebhookEndpoint {
    /// Where to POST: `https://…` resolving to a public address (`http` and private
    /// addresses only with `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`).
    #[oai(validator(max_length = 2048))]
    pub url: String,
    /// The change types to deliver (default: all).
    pub event_types: Option<Vec<ChangeType>>,
}

/// Changes to an endpoint.
#[derive(Debug, Object)]
pub struct WebhookEndpointPatch {
    /// A new URL (same rules as when created; leave it out to keep the URL).
    #[oai(validator(max_length = 2048))]
    pub url: MaybeUndefined<String>,
    /// The change types to deliver (`[]`: all; leave it out to keep them).
    pub event_types: MaybeUndefined<Vec<ChangeType>>,
    /// Turn deliveries off or on again (on again clears the reason it was disabled;
    /// pending deliveries resume in order).
    pub enabled: MaybeUndefined<bool>,
}

/// The value of a patch field: `None` when left out; `null` is refused, naming the field.
fn present<T>(field: &'static str, value: MaybeUndefined<T>) -> Result<Option<T>, ApiError> {
    match value {
        MaybeUndefined::Value(v) => Ok(Some(v)),
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err(ApiError::invalid(field, "may not be null: leave it out to keep it")),
    }
}

/// An endpoint.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    /// The change types delivered (`[]`: all).
    pub event_types: Vec<ChangeType>,
    pub enabled: bool,
    /// Why it was disabled (it answered 410, or failed too long).
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// The signing secret (`whsec_…`): shown when the endpoint is created and when the
    /// secret is rotated, never again.
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One delivery of a change to an endpoint.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookDelivery {
    pub id: Uuid,
    /// The `webhook-id` header of every attempt.
    pub webhook_id: String,
    /// The change type delivered.
    #[oai(rename = "type")]
    pub kind: ChangeType,
    /// `pending`, `delivered`, `failed` (retries exhausted) or `discarded`.
    pub state: String,
    pub attempts: i32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status the endpoint last answered.
    pub last_status: Option<i32>,
    /// What went wrong last.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// `DELETE /webhook-endpoints/{id}` answers.
#[derive(ApiResponse)]
pub enum DeletedEndpoint {
    /// Deleted, with its deliveries.
    #[oai(status = 204)]
    Deleted,
}

/// `POST /webhook-endpoints` answers.
#[derive(ApiResponse)]
pub enum CreatedEndpoint {
    /// Created; the answer carries the signing secret, shown this once.
    #[oai(status = 201)]
    Created(Json<WebhookEndpoint>),
}

fn types_in(types: Option<Vec<ChangeType>>) -> Option<Vec<String>> {
    types.map(|t| t.into_iter().map(|k| ChangeKind::from(k).as_str().to_owned()).collect())
}

fn types_out(row: &EndpointRow) -> Vec<ChangeType> {
    webhooks::event_types(row)
        .iter()
        .filter_map(|t| t.parse::<ChangeKind>().ok())
        .map(ChangeType::from)
        .collect()
}

fn endpoint(row: &EndpointRow, secret: Option<String>) -> WebhookEndpoint {
    WebhookEndpoint {
        id: row.id,
        url: row.url.clone(),
        event_types: types_out(row),
        enabled: row.enabled,
        disabled_reason: row.disabled_reason.clone(),
        failing_since: row.failing_since,
        secret,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn delivery(row: &DeliveryRow) -> WebhookDelivery {
    WebhookDelivery {
        id: row.id,
        webhook_id: webhook_id(row.id),
        kind: row
            .event_type
            .parse::<ChangeKind>()
            .map(ChangeType::from)
            .unwrap_or(ChangeType::SlotUpdated),
        state: row.state.clone(),
        attempts: row.attempts,
        next_attempt_at: (row.state == webhooks::PENDING).then_some(row.next_attempt_at),
        last_status: row.last_status,
        last_error: row.last_error.clone(),
        created_at: row.created_at,
        delivered_at: row.delivered_at,
    }
}

async fn checked_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    let url = url.trim();
    if url.is_empty() || url.len() > MAX_URL_LEN {
        return Err(ApiError::invalid(
            "url",
            format!("must be 1 to {MAX_URL_LEN} characters"),
        ));
    }
    check_target(url, state.settings.webhook_allow_private_targets)
        .await
        .map_err(|e| ApiError::invalid("url", e.0))?;
    Ok(url.to_owned())
}

/// Whose endpoints the caller manages: a user's own, or with the admin token the
/// deployment-wide ones.
fn owner(auth: &OwnerAuth) -> Owner {
    match auth {
        OwnerAuth::Admin(_) => Owner::Deployment,
        OwnerAuth::User(user) => Owner::User(user.user_id()),
    }
}

async fn owned(state: &AppState, auth: &OwnerAuth, id: &PathUuid) -> Result<EndpointRow, ApiError> {
    let id = id.parse("id")?;
    webhooks::endpoint(&state.db, owner(auth), id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

/// Outbound webhooks.
pub struct WebhookEndpointsApi;

#[OpenApi(tag = "ApiTags::OutboundWebhooks")]
impl WebhookEndpointsApi {
    /// Register a webhook endpoint
    ///
    /// Register a URL that receives the caller's changes (the same as `GET /changes`) as
    /// signed POSTs: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,…`
    /// (Standard Webhooks; verify with the returned `secret`). Delivered in order, at least
    /// once, retried for about a day. At most 10 endpoints per user. With the admin token,
    /// a deployment-wide endpoint that receives every user's changes (the admin token
    /// then manages only those, on every route here).
    #[oai(
        path = "/webhook-endpoints",
        method = "post",
        operation_id = "create_webhook_endpoint"
    )]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: OwnerAuth,
        body: Json<NewWebhookEndpoint>,
    ) -> Result<CreatedEndpoint, Fails<{ BAD_REQUEST | CONFLICT | AUTHENTICATED }>> {
        let owner = owner(&auth);
        let url = checked_url(&state, &body.url).await?;
        if webhooks::endpoints(&state.db, owner).await?.len() as u64 >= MAX_ENDPOINTS {
            return Err(ApiError::conflict_message(
                "too_many_endpoints",
                format!("a user may have {MAX_ENDPOINTS} webhook endpoints; delete one first"),
            )
            .into());
        }
        let id = Uuid::new_v4();
        let secret = new_secret();
        let sealed = state.keys.encrypt(&secret, id, Secret::WebhookSecret);
        let types = types_in(body.0.event_types).unwrap_or_default();
        let row = webhooks::insert_endpoint(&state.db, id, owner, &url, &types, sealed, Utc::now()).await?;
        Ok(CreatedEndpoint::Created(Json(endpoint(&row, Some(secret)))))
    }

    /// List your webhook endpoints
    #[oai(path = "/webhook-endpoints", method = "get", operation_id = "list_webhook_endpoints")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: OwnerAuth,
    ) -> Result<Json<Vec<WebhookEndpoint>>, Fails<{ AUTHENTICATED }>> {
        let rows = webhooks::endpoints(&state.db, owner(&auth)).await?;
        Ok(Json(rows.iter().map(|r| endpoint(r, None)).collect()))
    }

    /// Show a webhook endpoint
    #[oai(
        path = "/webhook-endpoints/:id",
        method = "get",
        operation_id = "get_webhook_endpoint"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: OwnerAuth,
        /// The endpoint's id.
        id: Path<PathUuid>,
    ) -> Result<Json<WebhookEndpoint>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        Ok(Json(endpoint(&owned(&state, &auth, &id.0).await?, None)))
    }

    /// Change a webhook endpoint
    ///
    /// Change its URL or event types, or turn it off and on (on again after it was
    /// disabled resumes its pending deliveries in order).
    #[oai(
        path = "/webhook-endpoints/:id",
        method = "patch",
        operation_id = "update_webhook_endpoint"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: OwnerAuth,
        /// The endpoint's id.
        id: Path<PathUuid>,
        body: Json<WebhookEndpointPatch>,
    ) -> Result<Json<WebhookEndpoint>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let row = owned(&state, &auth, &id.0).await?;
        let patch = body.0;
        let url = match present("url", patch.url)? {
            Some(u) => Some(checked_url(&state, &u).await?),
            None => None,
        };
        let change = EndpointChange {
            url,
            event_types: types_in(present("event_types", patch.event_types)?),
            enabled: present("enabled", patch.enabled)?,
        };
        let updated = webhooks::update_endpoint(&state.db, owner(&auth), row.id, change, Utc::now())
            .await?
            .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
        crate::sync::webhooks::wake();
        Ok(Json(endpoint(&updated, None)))
    }

    /// Delete a webhook endpoint
    ///
    /// Delete it and its deliveries (pending ones are not sent).
    #[oai(
        path = "/webhook-endpoints/:id",
        method = "delete",
        operation_id = "delete_webhook_endpoint"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: OwnerAuth,
        /// The endpoint's id.
        id: Path<PathUuid>,
    ) -> Result<DeletedEndpoint, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let row = owned(&state, &auth, &id.0).await?;
        webhooks::delete_endpoint(&state.db, owner(&auth), row.id).await?;
        Ok(DeletedEndpoint::Deleted)
    }

    /// Rotate an endpoint's signing secret
    ///
    /// A new secret, shown once in the answer. The old one keeps signing beside it for
    /// `WEBHOOK_SECRET_GRACE_HOURS` (24 h by default): `webhook-signature` carries both
    /// signatures meanwhile, so the receiver can switch without losing a delivery.
    #[oai(
        path = "/webhook-endpoints/:id/rotate-secret",
        method = "post",
        operation_id = "rotate_webhook_secret"
    )]
    async fn rotate(
        &self,
        state: Data<&AppState>,
        auth: OwnerAuth,
        /// The endpoint's id.
        id: Path<PathUuid>,
    ) -> Result<Json<WebhookEndpoint>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let row = owned(&state, &auth, &id.0).await?;
        let secret = new_secret();
        let sealed = state.keys.encrypt(&secret, row.id, Secret::WebhookSecret);
        let now = Utc::now();
        let grace = chrono::Duration::hours(i64::try_from(state.settings.webhook_secret_grace_hours).unwrap_or(24));
        let updated = webhooks::rotate_secret(&state.db, owner(&auth), row.id, sealed, now + grace, now)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
        Ok(Json(endpoint(&updated, Some(secret))))
    }

    /// List an endpoint's deliveries
    ///
    /// The newest first, with what the endpoint answered.
    #[oai(
        path = "/webhook-endpoints/:id/deliveries",
        method = "get",
        operation_id = "list_webhook_deliveries"
    )]
    async fn deliveries(
        &self,
        state: Data<&AppState>,
        auth: OwnerAuth,
        /// The endpoint's id.
        id: Path<PathUuid>,
        /// Most deliveries listed, 1–500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<WebhookDelivery>>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let row = owned(&state, &auth, &id.0).await?;
        let limit = pagination::page_size(limit.0)?;
        let rows = webhooks::deliveries(&state.db, row.id, limit).await?;
        Ok(Json(rows.iter().map(delivery).collect()))
    }

    /// Deliver again
    ///
    /// Put a delivery back in line, due now, with the same `webhook-id` (a failed one, or
    /// one the receiver lost).
    #[oai(
        path = "/webhook-endpoints/:id/deliveries/:delivery_id/retry",
        method = "post",
        operation_id = "retry_webhook_delivery"
    )]
    async fn retry(
        &self,
        state: Data<&AppState>,
        auth: OwnerAuth,
        /// The endpoint's id.
        id: Path<PathUuid>,
        /// The delivery's id.
        delivery_id: Path<PathUuid>,
    ) -> Result<Json<WebhookDelivery>, Fails<{ BAD_REQUEST | NOT_FOUND | AUTHENTICATED }>> {
        let row = owned(&state, &auth, &id.0).await?;
        let delivery_id = delivery_id.0.parse("delivery_id")?;
        let again = webhooks::retry(&state.db, row.id, delivery_id, Utc::now())
            .await?
            .ok_or_else(|| ApiError::not_found("delivery"))?;
        crate::sync::webhooks::wake();
        Ok(Json(delivery(&again)))
    }
}
