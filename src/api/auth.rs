//! Security schemes: the admin token, and each user's API token (stored only as a hash).

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::rate_limit::VerifiedUser;
use crate::domain::UserId;
use crate::state::AppState;
use crate::store::users::User;

/// `Authorization: Bearer <ADMIN_TOKEN>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin")]
pub struct AdminAuth(());

/// `Authorization: Bearer <user API token>` (returned once by `POST /auth/users`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_user")]
pub struct UserAuth(pub User);

/// A user's API token or the admin token: routes whose resources belong to a user or to
/// the whole deployment (outbound webhook endpoints). The admin token is tried first, so a
/// token that is neither is answered as an unknown user token.
#[derive(SecurityScheme)]
pub enum OwnerAuth {
    Admin(AdminAuth),
    User(UserAuth),
}

impl UserAuth {
    /// The authenticated user's id.
    pub fn user_id(&self) -> UserId {
        UserId(self.0.id)
    }
}

fn app_state(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("AppState missing from the request")).into())
}

async fn check_admin(req: &Request, bearer: Bearer) -> poem::Result<()> {
    let state = app_state(req)?;
    let given = Sha256::digest(bearer.token.as_bytes());
    let expected = Sha256::digest(state.settings.admin_token().as_bytes());
    if bool::from(given.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("this route needs the admin token").into())
    }
}

async fn check_user(req: &Request, bearer: Bearer) -> poem::Result<User> {
    // The inbound limit may have looked the token up already (to charge the user).
    if let Some(VerifiedUser(user)) = req.extensions().get::<VerifiedUser>() {
        return Ok(user.clone());
    }
    let state = app_state(req)?;
    match state.inbound_limit.find_user(&state.db, &bearer.token).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(ApiError::unauthorized("unknown API token").into()),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// A new API token: `ss_` and 32 random bytes, base64url.
pub fn new_api_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "ss_{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    )
}

/// What is stored instead of a token: its SHA-256, hex. Tokens carry 256 random bits, so a
/// plain hash is enough (no password stretching needed).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
