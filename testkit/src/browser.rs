//! The browser's part of the OAuth flow: open Google's consent URL (the emulator approves
//! or denies at once, as `PUT /_emulator/consent` set it), then follow the redirect back
//! to the service's callback.

use std::time::Duration;

use reqwest::{Client, Response};

/// A client that does not follow redirects, as a test's "browser" (each call bounded to
/// 30 s, so a dying process fails the test instead of hanging it).
pub fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Opens the consent URL; returns where Google sends the browser back (the callback with
/// `code` and `state`, or `error`).
pub async fn consent(url: &str) -> String {
    let resp = browser().get(url).send().await.unwrap();
    assert!(resp.status().is_redirection(), "consent answered {}", resp.status());
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// Follows the redirect back to the service (`GET` the callback URL).
pub async fn follow(callback: &str) -> Response {
    browser().get(callback).send().await.unwrap()
}

/// The whole browser side: consent at `authorize_url`, then the callback, which must
/// answer 200; returns the callback URL that was used.
pub async fn consent_and_return(authorize_url: &str) -> String {
    let callback = consent(authorize_url).await;
    let resp = follow(&callback).await;
    let status = resp.status();
    assert_eq!(status, 200, "callback answered {status}: {:?}", resp.text().await);
    callback
}
