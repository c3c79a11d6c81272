//! `oauth_states`: authorizations in flight (PKCE verifier kept server-side, single use).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub nonce: String,
    pub user_id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub code_verifier_enc: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub return_to: Option<String>,
    pub calendar_mode: String,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// The Google account the authorization must end with (an admin's link to a known
    /// address); another account is refused at the callback.
    pub expected_email: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
