//! The OAuth 2.0 web-server flow with the `oauth2` crate: authorize URL with PKCE S256,
//! code exchange, refresh, revoke, and the userinfo call.

use chrono::{DateTime, Duration, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope,
    TokenResponse, TokenUrl,
};

use std::sync::Arc;

use super::client_health::{ClientHealth, PROBE_REFRESH_TOKEN};
use super::{GoogleEndpoints, REQUESTED_SCOPES};

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointSet>;

/// What the OAuth calls report.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// OAuth is not configured (which setting is missing is named).
    #[error("Google OAuth is not configured: set {0}")]
    NotConfigured(&'static str),
    /// Google refused the grant: bad or reused code, wrong verifier, revoked refresh token.
    #[error("Google refused the grant (invalid_grant): {0}")]
    InvalidGrant(String),
    /// Google refused the deployment's OAuth client itself (`invalid_client`,
    /// `deleted_client`): no user's fault; the deployment is degraded until it is fixed.
    #[error("Google refuses this deployment's OAuth client ({0}); check GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET")]
    ClientBroken(String),
    /// Any other failure talking to Google (network, 5xx, unexpected answers).
    #[error("Google OAuth call failed: {0}")]
    Transport(String),
}

/// Tokens from a code exchange or a refresh.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Space-separated scopes Google granted (empty when Google did not say).
    pub scopes: String,
}

/// Who a Google account is, per OpenID userinfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoogleAccount {
    /// The account's stable id (never reused, unlike an address).
    pub sub: Option<String>,
    /// Its email address (with the `email` scope).
    pub email: Option<String>,
}

/// The configured OAuth client.
#[derive(Clone)]
pub struct OAuthClient {
    client: Client,
    http: reqwest::Client,
    userinfo_url: String,
    revoke_url: String,
    /// Whether Google accepts this client; every token answer updates it.
    health: Arc<ClientHealth>,
}

impl OAuthClient {
    /// Builds the client from the endpoints and credentials.
    pub fn new(
        endpoints: &GoogleEndpoints,
        client_id: Option<&str>,
        client_secret: Option<&str>,
        redirect_uri: Option<&str>,
    ) -> Result<Self, OAuthError> {
        let client_id = client_id.ok_or(OAuthError::NotConfigured("GOOGLE_CLIENT_ID"))?;
        let client_secret = client_secret.ok_or(OAuthError::NotConfigured("GOOGLE_CLIENT_SECRET"))?;
        let redirect = redirect_uri.ok_or(OAuthError::NotConfigured("OAUTH_REDIRECT_URI"))?;
        let bad = |what: &'static str| move |_| OAuthError::NotConfigured(what);
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.to_owned()))
            .set_auth_uri(AuthUrl::new(endpoints.authorize.clone()).map_err(bad("a valid authorize URL"))?)
            .set_token_uri(TokenUrl::new(endpoints.token.clone()).map_err(bad("a valid token URL"))?)
            .set_revocation_url(RevocationUrl::new(endpoints.revoke.clone()).map_err(bad("a valid revoke URL"))?)
            .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).map_err(bad("OAUTH_REDIRECT_URI (a URL)"))?)
            .set_auth_type(AuthType::RequestBody);
        let http = reqwest::Client::builder()
            // The token endpoint must never redirect (oauth2's advice against SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| OAuthError::Transport(e.to_string()))?;
        Ok(Self {
            client,
            http,
            userinfo_url: endpoints.userinfo.clone(),
            revoke_url: endpoints.revoke.clone(),
            health: Arc::default(),
        })
    }

    /// The same client, recording what the token endpoint thinks of it in `health` (the
    /// deployment's one [`ClientHealth`]).
    pub fn with_client_health(mut self, health: Arc<ClientHealth>) -> Self {
        self.health = health;
        self
    }

    /// Whether Google accepts this client, as the last token answer said.
    pub fn health(&self) -> &Arc<ClientHealth> {
        &self.health
    }

    /// Notes in the client's health what a token request's answer says about the client.
    fn note<T>(&self, result: Result<T, OAuthError>) -> Result<T, OAuthError> {
        match &result {
            Ok(_) | Err(OAuthError::InvalidGrant(_)) => self.health.accepted(),
            Err(OAuthError::ClientBroken(why)) => self.health.refused(why),
            Err(_) => {}
        }
        result
    }

    /// One refresh request with a refresh token no grant has: answers whether Google
    /// accepts the client again (`invalid_grant` says it does), and records it.
    pub async fn probe_client(&self) -> bool {
        match self.refresh(PROBE_REFRESH_TOKEN).await {
            Ok(_) | Err(OAuthError::InvalidGrant(_)) => true,
            Err(e) => {
                tracing::debug!(error = %e, "the OAuth client probe was not answered with acceptance");
                false
            }
        }
    }

    /// A new PKCE pair: (S256 challenge, verifier to keep server-side).
    pub fn new_pkce() -> (PkceCodeChallenge, PkceCodeVerifier) {
        PkceCodeChallenge::new_random_sha256()
    }

    /// The URL to send the user's browser to: calendar + openid email, offline access,
    /// forced consent (so a refresh token comes back), incremental scopes, PKCE S256.
    pub fn authorize_url(&self, state: String, challenge: PkceCodeChallenge, login_hint: Option<&str>) -> String {
        let mut req = self
            .client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(REQUESTED_SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent")
            .add_extra_param("include_granted_scopes", "true")
            .set_pkce_challenge(challenge);
        if let Some(hint) = login_hint {
            req = req.add_extra_param("login_hint", hint.to_owned());
        }
        req.url().0.to_string()
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(&self, code: &str, verifier: String) -> Result<TokenSet, OAuthError> {
        let resp = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(classify);
        Ok(token_set(&self.note(resp)?))
    }

    /// Gets a new access token with a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, OAuthError> {
        let token = RefreshToken::new(refresh_token.to_owned());
        let resp = self
            .client
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await
            .map_err(classify);
        Ok(token_set(&self.note(resp)?))
    }

    /// Revokes a token at Google (revoking the refresh token ends the whole grant).
    /// A plain form POST, as Google documents it: the `oauth2` crate insists on an HTTPS
    /// revocation URL, which a local emulator does not have.
    pub async fn revoke(&self, token: &str) -> Result<(), OAuthError> {
        let resp = self
            .http
            .post(&self.revoke_url)
            .form(&[("token", token)])
            .send()
            .await
            .map_err(|e| OAuthError::Transport(e.to_string()))?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(OAuthError::Transport(format!("revoke answered {status}: {body}")))
    }

    /// The Google account's email, from the OpenID userinfo endpoint.
    pub async fn userinfo_email(&self, access_token: &str) -> Result<Option<String>, OAuthError> {
        Ok(self.userinfo(access_token).await?.email)
    }

    /// The Google account behind `access_token` (OpenID userinfo): its stable `sub` and,
    /// with the `email` scope, its address.
    pub async fn userinfo(&self, access_token: &str) -> Result<GoogleAccount, OAuthError> {
        let resp = self
            .http
            .get(&self.userinfo_url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| OAuthError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(OAuthError::Transport(format!("userinfo answered {}", resp.status())));
        }
        let body: serde_json::Value = resp.json().await.map_err(|e| OAuthError::Transport(e.to_string()))?;
        Ok(GoogleAccount {
            sub: body["sub"].as_str().map(str::to_owned),
            email: body["email"].as_str().map(str::to_owned),
        })
    }
}

fn token_set(resp: &oauth2::basic::BasicTokenResponse) -> TokenSet {
    let lifetime = resp.expires_in().unwrap_or(std::time::Duration::from_secs(3599));
    TokenSet {
        access_token: resp.access_token().secret().clone(),
        refresh_token: resp.refresh_token().map(|r| r.secret().clone()),
        expires_at: Utc::now() + Duration::from_std(lifetime).unwrap_or(Duration::seconds(3599)),
        scopes: resp
            .scopes()
            .map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    }
}

fn classify<RE: std::error::Error + 'static>(
    err: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> OAuthError {
    match err {
        RequestTokenError::ServerResponse(r) if *r.error() == BasicErrorResponseType::InvalidGrant => {
            OAuthError::InvalidGrant(r.error_description().cloned().unwrap_or_default())
        }
        RequestTokenError::ServerResponse(r)
            if matches!(r.error(), BasicErrorResponseType::InvalidClient)
                || matches!(r.error(), BasicErrorResponseType::Extension(e) if e == "deleted_client") =>
        {
            OAuthError::ClientBroken(format!(
                "{}: {}",
                r.error(),
                r.error_description().cloned().unwrap_or_default()
            ))
        }
        RequestTokenError::ServerResponse(r) => OAuthError::Transport(format!(
            "{}: {}",
            r.error(),
            r.error_description().cloned().unwrap_or_default()
        )),
        other => OAuthError::Transport(other.to_string()),
    }
}
