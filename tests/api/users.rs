use serde_json::{json, Value};

use crate::helpers::{assert_error, slot_body, spawn_app, TestUser};

#[tokio::test]
async fn admin_creates_a_user_whose_token_works_and_is_stored_only_as_a_hash() {
    let app = spawn_app().await;
    let resp = app
        .admin_post(
            "/auth/users",
            &json!({"email": "Ada@Example.com", "display_name": "Ada"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ada@example.com");
    let token = body["api_token"].as_str().unwrap();
    assert!(token.starts_with("ss_") && token.len() > 40);

    let me: Value = app
        .client
        .get(app.url("/auth/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], body["user"]["id"]);
    assert_eq!(me["display_name"], "Ada");

    use sea_orm::EntityTrait;
    let rows = slotsync::store::entities::users::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].api_token_hash, token);
    assert!(!rows[0].api_token_hash.contains(&token[3..]));
}

#[tokio::test]
async fn a_duplicate_email_is_a_conflict() {
    let app = spawn_app().await;
    app.create_user("bob@example.com").await;
    let resp = app
        .admin_post("/auth/users", &json!({"email": "BOB@example.com"}))
        .await;
    assert_error(resp, 409, "duplicate").await;
}

#[tokio::test]
async fn user_routes_reject_missing_and_unknown_tokens_and_admin_routes_reject_user_tokens() {
    let app = spawn_app().await;
    let user = app.create_user("carol@example.com").await;
    let resp = app.client.get(app.url("/auth/users/me")).send().await.unwrap();
    assert_error(resp, 401, "unauthorized").await;
    let resp = app
        .client
        .get(app.url("/auth/users/me"))
        .bearer_auth("ss_not-a-token")
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "unauthorized").await;
    let resp = app.get(&user, "/auth/users").await;
    assert_error(resp, 401, "unauthorized").await;
}

#[tokio::test]
async fn users_are_listed_a_page_at_a_time() {
    let app = spawn_app().await;
    for name in ["e", "a", "d", "b", "c"] {
        app.create_user(&format!("{name}@example.com")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/auth/users?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page: Value = app.admin_get(&path).await.json().await.unwrap();
        pages += 1;
        for u in page["items"].as_array().unwrap() {
            seen.push(u["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/auth/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        ["a", "b", "c", "d", "e"].map(|n| format!("{n}@example.com")).to_vec()
    );
}

#[tokio::test]
async fn deleting_a_user_removes_their_slots_and_their_token() {
    let app = spawn_app().await;
    let doomed = app.create_user("doomed@example.com").await;
    let keeper = app.create_user("keeper@example.com").await;
    app.create_slot(&doomed, &slot_body("a", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    app.create_slot(&keeper, &slot_body("b", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;

    let resp = app.admin_delete(&format!("/auth/users/{}", doomed.id)).await;
    assert_eq!(resp.status(), 204);

    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use slotsync::store::entities::slots;
    let left = slots::Entity::find()
        .filter(slots::Column::UserId.eq(uuid::Uuid::parse_str(&doomed.id).unwrap()))
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(left.is_empty());
    assert_eq!(app.list_slot_ids(&keeper, "").await.len(), 1);
    let resp = app.get(&doomed, "/auth/users/me").await;
    assert_error(resp, 401, "unauthorized").await;

    let again = app.admin_delete(&format!("/auth/users/{}", doomed.id)).await;
    assert_error(again, 404, "not_found").await;
}

#[tokio::test]
async fn deleting_a_user_with_a_bad_uuid_is_a_bad_request() {
    let app = spawn_app().await;
    let resp = app.admin_delete("/auth/users/not-a-uuid").await;
    let body = assert_error(resp, 400, "invalid_field").await;
    assert_eq!(body["field"], "user_id");
}

#[tokio::test]
async fn a_rotated_api_token_replaces_the_old_one_at_once() {
    let app = spawn_app().await;
    let user = app.create_user("ada@example.com").await;
    let resp = app
        .user_send(&user, reqwest::Method::POST, "/auth/users/me/token")
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let new = body["api_token"].as_str().unwrap().to_owned();
    assert_ne!(new, user.token);
    assert_eq!(
        app.get(&user, "/auth/users/me").await.status(),
        401,
        "the old token is refused"
    );
    let renewed = TestUser {
        id: user.id.clone(),
        email: user.email.clone(),
        token: new,
    };
    assert_eq!(app.get(&renewed, "/auth/users/me").await.status(), 200);

    // An admin can rotate it too (e.g. after a leak); a user cannot rotate another's.
    let resp = app
        .admin_post(&format!("/auth/users/{}/token", user.id), &json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    let by_admin: Value = resp.json().await.unwrap();
    assert_eq!(app.get(&renewed, "/auth/users/me").await.status(), 401);
    let latest = TestUser {
        id: user.id.clone(),
        email: user.email.clone(),
        token: by_admin["api_token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(app.get(&latest, "/auth/users/me").await.status(), 200);
    let path = format!("/auth/users/{}/token", user.id);
    assert_eq!(app.user_send(&latest, reqwest::Method::POST, &path).await.status(), 401);
    let unknown = app
        .admin_post(&format!("/auth/users/{}/token", uuid::Uuid::new_v4()), &json!({}))
        .await;
    assert_error(unknown, 404, "not_found").await;
}
