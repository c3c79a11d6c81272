//! Outbound webhooks, app + a local receiver over HTTP: every change arrives signed
//! (Standard Webhooks, verified here with the `standardwebhooks` crate and the endpoint's
//! secret), in order, at least once with the same `webhook-id`; a receiver that was down
//! gets everything once it is up; 410 disables the endpoint (and the feed says so); a
//! rotated secret signs beside the old one; private targets are refused unless allowed;
//! nobody receives another user's changes.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use google_calendar3::api::Event;
use poem::http::HeaderMap;
use poem::listener::TcpListener;
use poem::{handler, web::Data, EndpointExt, Route, Server};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, event_id_of, slot_body, spawn_app, spawn_app_with, spawn_app_with_google, wait_until, TestApp,
    TestUser,
};

/// What the receiver got: headers and body of each POST.
#[derive(Clone, Default)]
struct Inbox {
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// The status it answers (200 unless a test changes it).
    answer: Arc<AtomicU16>,
}

impl Inbox {
    fn all(&self) -> Vec<(HeaderMap, String)> {
        self.got.lock().unwrap().clone()
    }

    /// The bodies of the deliveries it accepted (answered 2xx), as JSON, in arrival order.
    fn accepted(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|(h, _)| h.get("x-answered").is_some_and(|v| v == "ok"))
            .map(|(_, b)| serde_json::from_str(&b).unwrap())
            .collect()
    }
}

#[handler]
fn receive(headers: &HeaderMap, body: String, inbox: Data<&Inbox>) -> poem::http::StatusCode {
    let status = inbox.answer.load(Ordering::SeqCst);
    let mut kept = headers.clone();
    if (200..300).contains(&status) {
        kept.insert("x-answered", "ok".parse().unwrap());
    }
    inbox.got.lock().unwrap().push((kept, body));
    poem::http::StatusCode::from_u16(status).unwrap()
}

/// A receiver on a free local port; its URL.
async fn receiver() -> (Inbox, String) {
    let inbox = Inbox::default();
    inbox.answer.store(200, Ordering::SeqCst);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let app = Route::new().at("/hook", poem::post(receive)).data(inbox.clone());
    tokio::spawn(Server::new(TcpListener::bind(format!("127.0.0.1:{port}"))).run(app));
    // Up once it answers.
    let url = format!("http://127.0.0.1:{port}/hook");
    wait_until("the receiver is up", Duration::from_secs(5), || async {
        reqwest::Client::new().get(&url).send().await.is_ok()
    })
    .await;
    inbox.got.lock().unwrap().clear();
    (inbox, url)
}

async fn create_endpoint(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let resp = app
        .api()
        .send(
            reqwest::Method::POST,
            "/webhook-endpoints",
            &user.token,
            Some(&body),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// A service, its user Ada, a receiver, and an endpoint of Ada's that takes every change.
async fn with_endpoint() -> (TestApp, TestUser, Inbox, Value) {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let (inbox, url) = receiver().await;
    let created = create_endpoint(&app, &user, json!({ "url": url })).await;
    (app, user, inbox, created)
}

fn verify(secret: &str, headers: &HeaderMap, body: &str) -> bool {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(body.as_bytes(), headers)
        .is_ok()
}

fn slot(title: &str, day: u32) -> Value {
    slot_body(
        title,
        &format!("2026-12-{day:02}T09:00:00Z"),
        &format!("2026-12-{day:02}T10:00:00Z"),
    )
}

#[tokio::test]
async fn api_and_google_changes_arrive_signed_and_in_order() {
    let ctx = spawn_app_with_google().await;
    let user = ctx.app.connected_user("ada@example.com").await;
    let (inbox, url) = receiver().await;
    let created = create_endpoint(&ctx.app, &user, json!({ "url": url })).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    // The secret is shown once.
    let shown = ctx
        .app
        .get_json(
            &user,
            &format!("/webhook-endpoints/{}", created["id"].as_str().unwrap()),
        )
        .await;
    assert!(shown.get("secret").is_none(), "{shown}");

    let made = ctx.app.create_slot(&user, &slot("mine", 1)).await;
    let id = made["id"].as_str().unwrap().to_owned();
    ctx.app.wait_until_pushed(&id).await;
    let hub = ctx.google.user_hub("ada@example.com").await;
    let patch = Event {
        summary: Some("renamed in Google".into()),
        ..Default::default()
    };
    hub.events()
        .patch(patch, "primary", &event_id_of(&made))
        .doit()
        .await
        .unwrap();
    ctx.app.pull(&user, "incremental").await;

    wait_until("both changes were delivered", Duration::from_secs(10), || async {
        inbox.accepted().len() >= 2
    })
    .await;
    let all = inbox.all();
    for (headers, body) in &all {
        assert!(
            verify(&secret, headers, body),
            "a delivery that does not verify: {headers:?}"
        );
        assert!(headers.get("webhook-id").unwrap().to_str().unwrap().starts_with("msg_"));
    }
    let bodies = inbox.accepted();
    let seen: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| (b["type"].as_str().unwrap(), b["data"]["origin"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [("slot.created", "api"), ("slot.updated", "google")],
        "{bodies:?}"
    );
    assert_eq!(bodies[1]["data"]["slot"]["title"], "renamed in Google");
    // The same change as the feed shows it.
    let feed = ctx.app.get_json(&user, "/changes?limit=500").await;
    let in_feed: Vec<&Value> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["slot_id"] == id.as_str())
        .collect();
    assert_eq!(bodies[1]["data"]["cursor"], in_feed[1]["cursor"]);
    // A forged signature does not verify (the check can fail).
    let (headers, body) = &all[0];
    assert!(!verify(&crate_secret_other(), headers, body));
}

fn crate_secret_other() -> String {
    slotsync::sync::webhooks::new_secret()
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_change_in_order_once_it_is_up() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let (inbox, url) = receiver().await;
    let created = create_endpoint(
        &app,
        &user,
        json!({ "url": url, "event_types": ["slot.created", "slot.updated"] }),
    )
    .await;
    inbox.answer.store(503, Ordering::SeqCst);
    let mut ids = Vec::new();
    for day in 1..=4 {
        ids.push(
            app.create_slot(&user, &slot(&format!("s{day}"), day)).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Deleted: not a type this endpoint takes.
    assert_eq!(app.delete_slot(&user, &ids[3]).await.status(), 204);
    wait_until(
        "the receiver was tried and refused",
        Duration::from_secs(10),
        || async { inbox.all().len() >= 2 },
    )
    .await;
    assert!(inbox.accepted().is_empty());
    inbox.answer.store(200, Ordering::SeqCst);
    wait_until("everything arrived", Duration::from_secs(20), || async {
        inbox.accepted().len() >= 4
    })
    .await;
    let accepted = inbox.accepted();
    let titles: Vec<&str> = accepted
        .iter()
        .map(|b| b["data"]["slot"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["s1", "s2", "s3", "s4"], "in order, each once");
    // Repeats only ever carry the same webhook-id (the refused first attempts).
    let all = inbox.all();
    let first_id = all[0].0.get("webhook-id").unwrap().clone();
    let first_body = &all[0].1;
    assert!(all
        .iter()
        .filter(|(_, b)| b == first_body)
        .all(|(h, _)| h.get("webhook-id") == Some(&first_id)));
    let deliveries = app
        .get_json(
            &user,
            &format!("/webhook-endpoints/{}/deliveries", created["id"].as_str().unwrap()),
        )
        .await;
    let deliveries = deliveries.as_array().unwrap();
    assert_eq!(deliveries.len(), 4, "{deliveries:?}");
    assert!(deliveries.iter().all(|d| d["state"] == "delivered"));
    assert!(deliveries.iter().any(|d| d["attempts"].as_i64().unwrap() > 1));
}

#[tokio::test]
async fn an_endpoint_answering_410_is_disabled_and_the_feed_says_so() {
    let (app, user, inbox, created) = with_endpoint().await;
    let endpoint = created["id"].as_str().unwrap().to_owned();
    inbox.answer.store(410, Ordering::SeqCst);
    app.create_slot(&user, &slot("s", 1)).await;
    wait_until("the endpoint is disabled", Duration::from_secs(10), || async {
        app.get_json(&user, &format!("/webhook-endpoints/{endpoint}")).await["enabled"] == false
    })
    .await;
    let shown = app.get_json(&user, &format!("/webhook-endpoints/{endpoint}")).await;
    assert!(shown["disabled_reason"].as_str().unwrap().contains("410"), "{shown}");
    let feed = app.get_json(&user, "/changes").await;
    assert!(
        feed["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "webhook.endpoint_disabled"),
        "{feed}"
    );
    let status = app.get_json(&user, "/sync/status").await;
    let health = &status["webhook_endpoints"][0];
    assert_eq!(health["enabled"], false, "{status}");
    assert_eq!(health["pending_deliveries"], 1, "{status}");
    // Turned on again, the pending delivery goes out.
    inbox.answer.store(200, Ordering::SeqCst);
    let resp = app
        .api()
        .send(
            reqwest::Method::PATCH,
            &format!("/webhook-endpoints/{endpoint}"),
            &user.token,
            Some(&json!({ "enabled": true })),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    wait_until("the held delivery went out", Duration::from_secs(10), || async {
        !inbox.accepted().is_empty()
    })
    .await;
    wait_until("the status shows it delivered", Duration::from_secs(5), || async {
        let h = &app.get_json(&user, "/sync/status").await["webhook_endpoints"][0];
        h["pending_deliveries"] == 0 && h["last_delivered_at"].is_string()
    })
    .await;
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let (app, user, inbox, created) = with_endpoint().await;
    let old = created["secret"].as_str().unwrap().to_owned();
    let rotated = app
        .api()
        .must(
            reqwest::Method::POST,
            &format!("/webhook-endpoints/{}/rotate-secret", created["id"].as_str().unwrap()),
            &user.token,
            None,
        )
        .await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);
    app.create_slot(&user, &slot("s", 1)).await;
    wait_until("delivered", Duration::from_secs(10), || async {
        !inbox.accepted().is_empty()
    })
    .await;
    let (headers, body) = inbox.all().remove(0);
    assert!(verify(&new, &headers, &body), "the new secret verifies");
    assert!(
        verify(&old, &headers, &body),
        "the old one too, during the grace period"
    );
    assert_eq!(
        headers
            .get("webhook-signature")
            .unwrap()
            .to_str()
            .unwrap()
            .matches("v1,")
            .count(),
        2
    );
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let app = spawn_app_with(|s| s.webhook_allow_private_targets = false).await;
    let user = app.create_user("ada@example.com").await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost:8443/x",
        "ftp://example.com",
    ] {
        let resp = app
            .api()
            .send(
                reqwest::Method::POST,
                "/webhook-endpoints",
                &user.token,
                Some(&json!({ "url": url })),
                &[],
            )
            .await
            .unwrap();
        let body = assert_error(resp, 400, "invalid_field").await;
        assert_eq!(body["field"], "url", "{url}: {body}");
    }
    assert_eq!(
        app.get_json(&user, "/webhook-endpoints").await,
        json!([]),
        "nothing was stored"
    );
}

#[tokio::test]
async fn nobody_receives_another_users_changes() {
    let app = spawn_app().await;
    let ada = app.create_user("ada@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let (bob_inbox, url) = receiver().await;
    let bobs = create_endpoint(&app, &bob, json!({ "url": url })).await;
    app.create_slot(&ada, &slot("ada's", 1)).await;
    app.create_slot(&bob, &slot("bob's", 2)).await;
    wait_until("bob's change arrived", Duration::from_secs(10), || async {
        !bob_inbox.accepted().is_empty()
    })
    .await;
    let titles: Vec<String> = bob_inbox
        .accepted()
        .iter()
        .map(|b| b["data"]["slot"]["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["bob's"]);
    // Ada cannot see or touch Bob's endpoint.
    let resp = app
        .get(&ada, &format!("/webhook-endpoints/{}", bobs["id"].as_str().unwrap()))
        .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_deleted_endpoint_is_gone_with_its_deliveries() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let (_inbox, url) = receiver().await;
    let created = create_endpoint(&app, &user, json!({ "url": url })).await;
    let path = format!("/webhook-endpoints/{}", created["id"].as_str().unwrap());
    let resp = app
        .api()
        .send(reqwest::Method::DELETE, &path, &user.token, None, &[])
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(app.get(&user, &path).await.status(), 404);
    assert_eq!(app.get_json(&user, "/webhook-endpoints").await, json!([]));
}

/// A worker that claimed an endpoint and stopped (a process killed mid-delivery) holds
/// its lease until it runs out; then the delivery goes out, with the same `webhook-id` it
/// had (the id is the delivery row's, fixed when the change committed).
#[tokio::test]
async fn a_delivery_claimed_by_a_stopped_worker_goes_out_when_its_lease_runs_out() {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use slotsync::store::entities::{webhook_deliveries, webhook_endpoints};

    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let (inbox, url) = receiver().await;
    // The receiver is down while the change commits, so the delivery stays pending.
    inbox.answer.store(503, Ordering::SeqCst);
    let created = create_endpoint(&app, &user, json!({ "url": url })).await;
    let endpoint: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    // "Another process" claims the endpoint for 2 s and dies without answering.
    let lease_end = chrono::Utc::now() + chrono::Duration::seconds(2);
    webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::DeliveringUntil, Expr::value(Some(lease_end)))
        .filter(webhook_endpoints::Column::Id.eq(endpoint))
        .exec(&app.state.db)
        .await
        .unwrap();
    app.create_slot(&user, &slot("s", 1)).await;
    inbox.answer.store(200, Ordering::SeqCst);
    let delivery = webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint))
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the delivery was created with the change");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        inbox.all().is_empty(),
        "nothing is sent while another worker holds the endpoint"
    );
    wait_until(
        "the delivery went out after the lease",
        Duration::from_secs(10),
        || async { !inbox.accepted().is_empty() },
    )
    .await;
    assert!(chrono::Utc::now() >= lease_end);
    let (headers, _) = inbox.all().remove(0);
    assert_eq!(
        headers.get("webhook-id").unwrap().to_str().unwrap(),
        slotsync::sync::webhooks::webhook_id(delivery.id)
    );
}

#[tokio::test]
async fn a_deployment_wide_endpoint_receives_every_users_changes_and_only_the_admin_sees_it() {
    let app = spawn_app().await;
    let ada = app.create_user("ada@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let (inbox, url) = receiver().await;
    let admin = slotsync_testkit::ADMIN_TOKEN;
    let resp = app
        .api()
        .send(
            reqwest::Method::POST,
            "/webhook-endpoints",
            admin,
            Some(&json!({ "url": url })),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let global: Value = resp.json().await.unwrap();
    let secret = global["secret"].as_str().unwrap().to_owned();
    app.create_slot(&ada, &slot("ada's", 1)).await;
    app.create_slot(&bob, &slot("bob's", 2)).await;
    wait_until("both users' changes arrived", Duration::from_secs(10), || async {
        inbox.accepted().len() >= 2
    })
    .await;
    let mut titles: Vec<String> = inbox
        .accepted()
        .iter()
        .map(|b| b["data"]["slot"]["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    assert_eq!(titles, ["ada's", "bob's"]);
    for (headers, body) in inbox.all() {
        assert!(verify(&secret, &headers, &body));
    }
    // Users neither list nor reach it; the admin lists only deployment-wide endpoints.
    assert_eq!(app.get_json(&ada, "/webhook-endpoints").await, json!([]));
    let path = format!("/webhook-endpoints/{}", global["id"].as_str().unwrap());
    assert_eq!(app.get(&ada, &path).await.status(), 404);
    let listed: Value = app
        .api()
        .send(reqwest::Method::GET, "/webhook-endpoints", admin, None, &[])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // A token that is neither is refused.
    let resp = app
        .api()
        .send(reqwest::Method::GET, "/webhook-endpoints", "nope", None, &[])
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// A patch field sent as `null` is refused, naming it, and changes nothing; left out, it
/// keeps its value.
#[tokio::test]
async fn a_null_in_a_patch_is_refused_naming_the_field() {
    let (app, user, _inbox, created) = with_endpoint().await;
    let path = format!("/webhook-endpoints/{}", created["id"].as_str().unwrap());
    for field in ["url", "event_types", "enabled"] {
        let resp = app
            .api()
            .send(
                reqwest::Method::PATCH,
                &path,
                &user.token,
                Some(&json!({ field: null })),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{field}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["field"], field, "{body}");
    }
    let resp = app
        .api()
        .send(
            reqwest::Method::PATCH,
            &path,
            &user.token,
            Some(&json!({ "enabled": false })),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["url"], created["url"], "the URL kept: {body}");
}
