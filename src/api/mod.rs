//! The HTTP API (poem-openapi): one file per tag; handlers parse, call one service
//! function and map the result.

pub mod admin;
pub mod allow;
pub mod appearance_model;
pub mod auth;
pub mod body;
pub mod changes;
pub mod date;
pub mod error;
pub mod google_auth;
pub mod health;
pub mod held_deletions;
pub mod metrics;
pub mod occurrences;
pub mod pagination;
pub mod path_id;
pub mod rate_limit;
pub mod request_trace;
pub mod return_to;
pub mod slot_model;
pub mod slots;
pub mod sync;
pub mod sync_settings;
pub mod users;
pub mod webhook_endpoints;
pub mod webhooks;

use poem_openapi::{OpenApiService, Tags};

/// `impl poem_openapi::types::Type` for a scalar shown in the spec as `schema` under
/// `name` (the parts every hand-written scalar type repeats).
macro_rules! scalar_type {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl poem_openapi::types::Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                poem_openapi::registry::MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }
    };
}
pub(crate) use scalar_type;

/// Tags grouping the operations in Swagger UI.
#[derive(Tags)]
pub enum ApiTags {
    /// Liveness, readiness and metrics.
    Health,
    /// Users and their API tokens (admin), and the caller's own profile.
    Users,
    /// The caller's slots; each is pushed to the owner's Google Calendar.
    Slots,
    /// Connecting a Google account (OAuth with PKCE), its status, and disconnecting.
    Google,
    /// The caller's sync with Google: status, conflicts, pull now, push again, stop, resume.
    Sync,
    /// Google push notifications, and setting up a user's notification channel (admin).
    Webhooks,
    /// Outbound webhooks: endpoints that receive the caller's changes, signed (Standard
    /// Webhooks), and their deliveries.
    OutboundWebhooks,
    /// Operator routes: running scheduled jobs on demand.
    Admin,
}

/// Every operation, grouped by tag.
pub type Apis = (
    health::HealthApi,
    metrics::MetricsApi,
    users::UsersApi,
    google_auth::GoogleAuthApi,
    slots::SlotsApi,
    occurrences::OccurrencesApi,
    changes::ChangesApi,
    webhook_endpoints::WebhookEndpointsApi,
    sync::SyncApi,
    sync_settings::SyncSettingsApi,
    held_deletions::HeldDeletionsApi,
    webhooks::ChannelApi,
    webhooks::WebhooksApi,
    admin::AdminApi,
);

/// The OpenAPI service: routes plus the spec. No server URL is set, so Swagger UI calls
/// whichever host served it and the committed spec does not depend on the bind address.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            health::HealthApi,
            metrics::MetricsApi,
            users::UsersApi,
            google_auth::GoogleAuthApi,
            slots::SlotsApi,
            occurrences::OccurrencesApi,
            changes::ChangesApi,
            webhook_endpoints::WebhookEndpointsApi,
            sync::SyncApi,
            sync_settings::SyncSettingsApi,
            held_deletions::HeldDeletionsApi,
            webhooks::ChannelApi,
            webhooks::WebhooksApi,
            admin::AdminApi,
        ),
        "slotsync",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Two-way sync between your time slots and Google Calendar.\n\n\
         Admin routes take `Authorization: Bearer <ADMIN_TOKEN>`; user routes take the API \
         token returned once by `POST /auth/users`. Every error has the body \
         `{code, message, field?}`.",
    )
}

/// The spec as pretty JSON (what `slotsync openapi` prints and `openapi/openapi.json` holds).
pub fn spec_json() -> String {
    service().spec()
}
