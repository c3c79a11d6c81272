//! Secrets at rest and signatures, all keyed from `SECRET_KEY`: AES-256-GCM for OAuth tokens
//! (a fresh random nonce per value; the owner and purpose as associated data), HMAC-SHA256 for the OAuth `state` and channel tokens.
//! Pure: no I/O.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of encrypted values bound to their owner and purpose.
const SEALED_PREFIX: &str = "v2:";
/// Prefix of the first format (no associated data), read only to seal it again.
const LEGACY_PREFIX: &str = "v1:";

/// What a stored secret is; with its owner, bound into the ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// A Google access token (`google_connections.access_token_enc`).
    AccessToken,
    /// A Google refresh token (`google_connections.refresh_token_enc`).
    RefreshToken,
    /// A PKCE verifier of an authorization in flight (`oauth_states.code_verifier_enc`).
    PkceVerifier,
    /// An outbound webhook endpoint's signing secret (`webhook_endpoints.secret_enc`),
    /// owned by the endpoint.
    WebhookSecret,
}

impl Secret {
    fn label(self) -> &'static str {
        match self {
            Secret::AccessToken => "google-access-token",
            Secret::RefreshToken => "google-refresh-token",
            Secret::PkceVerifier => "pkce-verifier",
            Secret::WebhookSecret => "webhook-signing-secret",
        }
    }
}

fn associated_data(owner: Uuid, what: Secret) -> Vec<u8> {
    format!("slotsync/v2|{owner}|{}", what.label()).into_bytes()
}

/// What can go wrong reading back a secret or a signed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext is not ours or was altered (or `SECRET_KEY` changed).
    #[error("cannot decrypt: the value was altered or SECRET_KEY changed")]
    Undecryptable,
    /// The signature does not match the payload.
    #[error("the signature does not match")]
    BadSignature,
    /// The value is not in the expected shape.
    #[error("malformed value")]
    Malformed,
}

/// Keys derived from `SECRET_KEY`, one per purpose, so no key serves two ends.
#[derive(Clone)]
pub struct Keys {
    token_key: [u8; 32],
    state_key: [u8; 32],
    channel_key: [u8; 32],
    /// HMAC already keyed with `channel_key`: each webhook check clones it rather than
    /// hashing the key again.
    channel_mac: HmacSha256,
}

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

fn sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

impl Keys {
    /// Derives the purpose keys (HMAC-SHA256 of a fixed label under the secret).
    pub fn derive(secret: &[u8]) -> Self {
        let channel_key = derive(secret, "slotsync/v1/channel-token");
        Self {
            token_key: derive(secret, "slotsync/v1/token-encryption"),
            state_key: derive(secret, "slotsync/v1/oauth-state"),
            channel_key,
            channel_mac: <HmacSha256 as Mac>::new_from_slice(&channel_key).expect("HMAC takes any key length"),
        }
    }

    /// Encrypts a secret for storage, bound to its owner and purpose (AES-GCM associated
    /// data): `v2:` + base64(nonce ‖ ciphertext ‖ tag). A value copied to another user's
    /// row or another column does not decrypt there.
    pub fn encrypt(&self, plaintext: &str, owner: Uuid, what: Secret) -> String {
        let aad = associated_data(owner, what);
        format!(
            "{SEALED_PREFIX}{}",
            STANDARD.encode(self.seal(plaintext.as_bytes(), &aad))
        )
    }

    /// Reads back a value made by [`Keys::encrypt`] for the same owner and purpose.
    pub fn decrypt(&self, stored: &str, owner: Uuid, what: Secret) -> Result<String, CryptoError> {
        let raw = stored.strip_prefix(SEALED_PREFIX).ok_or(CryptoError::Malformed)?;
        self.open(raw, &associated_data(owner, what))
    }

    /// Whether `stored` is in the format of an earlier version (to be sealed again).
    pub fn is_legacy(stored: &str) -> bool {
        stored.starts_with(LEGACY_PREFIX)
    }

    /// Reads a value of the first format (`v1:`, no associated data). Only the upgrade that
    /// seals stored values again calls this; [`Keys::decrypt`] refuses them.
    pub fn decrypt_legacy(&self, stored: &str) -> Result<String, CryptoError> {
        let raw = stored.strip_prefix(LEGACY_PREFIX).ok_or(CryptoError::Malformed)?;
        self.open(raw, b"")
    }

    /// A value in the first format (`v1:`, no associated data), as releases before the
    /// binding stored them: kept to test the upgrade that seals such values again.
    pub fn encrypt_legacy(&self, plaintext: &str) -> String {
        format!(
            "{LEGACY_PREFIX}{}",
            STANDARD.encode(self.seal(plaintext.as_bytes(), b""))
        )
    }

    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new_from_slice(&self.token_key).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("AES-GCM encryption does not fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    fn open(&self, raw: &str, aad: &[u8]) -> Result<String, CryptoError> {
        let bytes = STANDARD.decode(raw).map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(&self.token_key).expect("32-byte key");
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Malformed)
    }

    /// Signs a payload for a URL: `base64url(payload).base64url(hmac)`.
    pub fn sign_state(&self, payload: &[u8]) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(sign(&self.state_key, payload))
        )
    }

    /// Checks a value made by [`Keys::sign_state`] (constant time) and returns the payload.
    pub fn verify_state(&self, signed: &str) -> Result<Vec<u8>, CryptoError> {
        let (payload, tag) = signed.split_once('.').ok_or(CryptoError::Malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| CryptoError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| CryptoError::Malformed)?;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.state_key).expect("HMAC takes any key length");
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| CryptoError::BadSignature)?;
        Ok(payload)
    }

    /// The token given to Google for a notification channel: HMAC of the channel id, so
    /// nothing secret is stored and the webhook can check it in constant time.
    pub fn channel_token(&self, channel_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(sign(&self.channel_key, channel_id.as_bytes()))
    }

    /// A stable id for this deployment (the `slotsync_origin` of its events): 12 hex
    /// characters of an HMAC of a fixed label, so every instance sharing the secret agrees
    /// and the secret itself is not revealed.
    pub fn deployment_id(&self) -> String {
        hex::encode(&sign(&self.channel_key, b"slotsync deployment id")[..6])
    }

    /// Whether `token` is the channel token of `channel_id` (constant time; no allocation,
    /// as it runs for every notification).
    pub fn check_channel_token(&self, channel_id: &str, token: &str) -> bool {
        // A token that decodes to more than a tag's 32 bytes does not fit: refused.
        let mut tag = [0u8; 32];
        let Ok(len) = URL_SAFE_NO_PAD.decode_slice(token, &mut tag) else {
            return false;
        };
        let mut mac = self.channel_mac.clone();
        mac.update(channel_id.as_bytes());
        mac.verify_slice(&tag[..len]).is_ok()
    }
}

/// A random URL-safe string of `bytes` random bytes (nonces, ids).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(b"0123456789abcdefghijklmnopqrstuvwxyz")
    }

    const ADA: Uuid = Uuid::from_u128(1);
    const BOB: Uuid = Uuid::from_u128(2);

    #[test]
    fn tokens_round_trip_and_each_encryption_differs() {
        let k = keys();
        let a = k.encrypt("ya29.secret", ADA, Secret::AccessToken);
        let b = k.encrypt("ya29.secret", ADA, Secret::AccessToken);
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("secret"));
        assert_eq!(k.decrypt(&a, ADA, Secret::AccessToken).unwrap(), "ya29.secret");
    }

    #[test]
    fn a_value_moved_to_another_user_or_column_does_not_decrypt() {
        let k = keys();
        let sealed = k.encrypt("refresh-token", ADA, Secret::RefreshToken);
        assert_eq!(
            k.decrypt(&sealed, BOB, Secret::RefreshToken),
            Err(CryptoError::Undecryptable)
        );
        assert_eq!(
            k.decrypt(&sealed, ADA, Secret::AccessToken),
            Err(CryptoError::Undecryptable)
        );
        assert_eq!(k.decrypt(&sealed, ADA, Secret::RefreshToken).unwrap(), "refresh-token");
    }

    #[test]
    fn an_altered_ciphertext_or_another_key_cannot_decrypt() {
        let k = keys();
        let sealed = k.encrypt("refresh-token", ADA, Secret::RefreshToken);
        let mut bytes = STANDARD.decode(&sealed[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = format!("v2:{}", STANDARD.encode(bytes));
        assert_eq!(
            k.decrypt(&altered, ADA, Secret::RefreshToken),
            Err(CryptoError::Undecryptable)
        );
        let other = Keys::derive(b"another-secret-0123456789-abcdefghijkl");
        assert_eq!(
            other.decrypt(&sealed, ADA, Secret::RefreshToken),
            Err(CryptoError::Undecryptable)
        );
        assert_eq!(
            k.decrypt("plaintext", ADA, Secret::RefreshToken),
            Err(CryptoError::Malformed)
        );
    }

    #[test]
    fn a_legacy_value_is_read_only_by_the_upgrade() {
        let k = keys();
        // The first format: no associated data.
        let legacy = k.encrypt_legacy("old-token");
        assert!(Keys::is_legacy(&legacy));
        assert_eq!(
            k.decrypt(&legacy, ADA, Secret::AccessToken),
            Err(CryptoError::Malformed)
        );
        assert_eq!(k.decrypt_legacy(&legacy).unwrap(), "old-token");
        assert!(!Keys::is_legacy(&k.encrypt("x", ADA, Secret::AccessToken)));
    }

    #[test]
    fn a_signed_state_verifies_and_a_tampered_one_does_not() {
        let k = keys();
        let signed = k.sign_state(b"{\"user\":1}");
        assert_eq!(k.verify_state(&signed).unwrap(), b"{\"user\":1}");
        let (_, tag) = signed.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(b"{\"user\":2}"));
        assert_eq!(k.verify_state(&forged), Err(CryptoError::BadSignature));
        assert_eq!(k.verify_state("nodot"), Err(CryptoError::Malformed));
    }

    #[test]
    fn channel_tokens_are_bound_to_their_channel() {
        let k = keys();
        let t = k.channel_token("chan-1");
        assert!(k.check_channel_token("chan-1", &t));
        assert!(!k.check_channel_token("chan-2", &t));
        assert!(!k.check_channel_token("chan-1", "garbage!"));
        assert!(!k.check_channel_token("chan-1", &t[..42]), "a truncated token");
        assert!(!k.check_channel_token("chan-1", &format!("{t}AA")), "a longer token");
        assert!(!k.check_channel_token("chan-1", &"A".repeat(400)), "a long one");
        assert!(!k.check_channel_token("chan-1", ""));
    }
}
