//! `GET /metrics` in Prometheus text format. The recorder is process-wide and tests run
//! in parallel, so this checks that each series exists and counted what this test did.

use crate::helpers::{slot_body, spawn_app_with_channels_and};

/// The value of the first series whose line starts with `prefix` (name and labels).
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_pushes_pulls_notifications_google_calls_and_the_outbox() {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.create_user("ada@example.com").await;
    ctx.connect_and_settle(&user).await;
    let slot = ctx
        .app
        .create_slot(&user, &slot_body("m", "2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z"))
        .await;
    ctx.app.wait_until_pushed(slot["id"].as_str().unwrap()).await;
    ctx.app.pull(&user, "full").await;
    let forged = ctx
        .app
        .notify(&[
            ("X-Goog-Channel-ID", uuid::Uuid::new_v4().to_string()),
            ("X-Goog-Channel-Token", "forged".into()),
            ("X-Goog-Resource-ID", "r".into()),
            ("X-Goog-Resource-State", "exists".into()),
            ("X-Goog-Message-Number", "1".into()),
        ])
        .await;
    assert_eq!(forged.status(), 403);

    let resp = ctx.app.client.get(ctx.app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for (series, at_least) in [
        ("slotsync_pushes_total{outcome=\"pushed\"}", 1.0),
        ("slotsync_google_calls_total{op=\"events.insert\",status=\"2xx\"}", 1.0),
        ("slotsync_google_calls_total{op=\"events.watch\",status=\"2xx\"}", 1.0),
        ("slotsync_pulls_total{mode=\"full\",result=\"ok\"}", 1.0),
        (
            "slotsync_notifications_total{result=\"rejected\",reason=\"invalid_channel_token\"}",
            1.0,
        ),
        (
            "slotsync_notifications_total{result=\"accepted\",reason=\"handshake\"}",
            1.0,
        ),
        ("slotsync_outbox_slots{state=\"synced\"}", 1.0),
        ("slotsync_push_duration_seconds_count", 1.0),
        ("slotsync_pull_duration_seconds_count{mode=\"full\"}", 1.0),
        ("slotsync_webhook_duration_seconds_count", 2.0),
    ] {
        let got = value(&text, series).unwrap_or_else(|| panic!("{series} is missing from:\n{text}"));
        assert!(got >= at_least, "{series} = {got}");
    }
    assert!(
        text.contains("slotsync_push_duration_seconds_bucket{le=\"0.001\"}"),
        "{text}"
    );
}
