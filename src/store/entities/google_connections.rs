//! `google_connections`: a user's link to Google; tokens are AES-256-GCM ciphertext.

use sea_orm::entity::prelude::*;

use crate::domain::ConnectionStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "google_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub google_email: Option<String>,
    pub calendar_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub access_token_enc: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub refresh_token_enc: Option<String>,
    pub token_expires_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text")]
    pub granted_scopes: String,
    pub status: ConnectionStatus,
    pub connected_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// The Google account's stable id (OpenID `sub`); with `calendar_id`, the connection's
    /// identity. `None` for connections made before it was recorded.
    pub google_sub: Option<String>,
    /// Counts re-homings (a change of account or calendar); slots carry the generation
    /// their Google link belongs to.
    pub home_generation: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
