use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_committed_spec_matches_the_served_one() {
    let app = spawn_app().await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value = serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: run `cargo run -- openapi --out openapi/openapi.json`"
    );
}

#[tokio::test]
async fn the_spec_lists_every_route() {
    let spec: Value = serde_json::from_str(&slotsync::api::spec_json()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/auth/users", "post"),
        ("/auth/users", "get"),
        ("/auth/users/me", "get"),
        ("/auth/users/{user_id}", "delete"),
        ("/slots", "post"),
        ("/slots", "get"),
        ("/slots/{id}", "get"),
        ("/slots/{id}", "put"),
        ("/slots/{id}", "delete"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
}
