use crate::helpers::spawn_app;

#[tokio::test]
async fn liveness_answers_ok() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readiness_checks_the_database() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ready");

    app.state.db.clone().close().await.unwrap();
    let resp = app.client.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger"), "not the Swagger UI page");
}

#[tokio::test]
async fn unknown_routes_get_the_json_error_body() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/no/such/route")).send().await.unwrap();
    crate::helpers::assert_error(resp, 404, "not_found").await;
}
