//! `GET /metrics` in Prometheus text format. The recorder is process-wide and tests run
//! in parallel, so this checks that each series exists and counted what this test did.

use tokio::io::AsyncBufReadExt;

use slotsync_testkit::metric_value as value;

use crate::helpers::{slot_body, spawn_app_with_channels_and};

#[tokio::test]
async fn metrics_count_pushes_pulls_notifications_google_calls_and_the_outbox() {
    let ctx = spawn_app_with_channels_and(|_| {}).await;
    let user = ctx.app.create_user("ada@example.com").await;
    ctx.app.connect_and_settle(&user).await;
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

/// The lines of `text` for `family` (its series, without `# HELP`/`# TYPE`).
fn series<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(family)).collect()
}

#[tokio::test]
async fn a_freshly_started_process_lists_breaker_trips_conflicts_and_outcomes_at_zero() {
    // Its own process: the recorder is process-wide, and tests in this one trip breakers.
    let (database_url, _db) = crate::helpers::test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slotsync"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .env("DATABASE_URL", &database_url)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("ADMIN_TOKEN", crate::helpers::ADMIN_TOKEN)
        .env("SECRET_KEY", "metrics-secret-key-0123456789abcdefghijklmnop")
        .env("SCHEDULER_ENABLED", "false")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("slotsync serve starts");
    let mut log = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = log.next_line().await.expect("the log is readable") {
            if let Some(at) = line.find("listening on http://") {
                let rest = &line[at + "listening on ".len()..];
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("slotsync serve exited before listening");
    })
    .await
    .expect("slotsync serve listens within 60 s");

    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    child.kill().await.unwrap();
    for line in [
        "slotsync_breaker_trips_total{scope=\"slot\"} 0",
        "slotsync_breaker_trips_total{scope=\"user\"} 0",
        "slotsync_conflicts_total{winner=\"app\",detected_by=\"push\"} 0",
        "slotsync_conflicts_total{winner=\"app\",detected_by=\"pull\"} 0",
        "slotsync_conflicts_total{winner=\"google\",detected_by=\"push\"} 0",
        "slotsync_conflicts_total{winner=\"google\",detected_by=\"pull\"} 0",
        "slotsync_pushes_total{outcome=\"failed\"} 0",
        "slotsync_pulls_total{mode=\"full\",result=\"error\"} 0",
        "slotsync_notifications_total{result=\"rejected\",reason=\"invalid_channel_token\"} 0",
        "slotsync_google_calls_total{op=\"events.insert\",status=\"429\"} 0",
        "slotsync_google_calls_total{op=\"events.list\",status=\"401\"} 0",
        "slotsync_push_duration_seconds_count 0",
        "slotsync_outbox_slots{state=\"pending\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "`{line}` is missing from:\n{text}");
    }
    assert!(text.contains("# HELP slotsync_breaker_trips_total"), "{text}");
    assert_eq!(series(&text, "slotsync_conflicts_total{").len(), 4, "{text}");
}

#[tokio::test]
async fn with_a_metrics_token_a_scrape_needs_it_and_a_wrong_one_is_refused() {
    const TOKEN: &str = "metrics-token-0123456789abcdef";
    let app = crate::helpers::spawn_app_with(|s| s.metrics_token = Some(TOKEN.into())).await;
    let scrape = |bearer: Option<&'static str>| {
        let request = app.client.get(app.url("/metrics"));
        let request = match bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };

    let missing = scrape(None).await;
    assert_eq!(missing.status(), 401);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized", "{body}");
    for wrong in [
        "metrics-token-0123456789abcdeX",
        "metrics-token",
        crate::helpers::ADMIN_TOKEN,
    ] {
        assert_eq!(scrape(Some(wrong)).await.status(), 401, "{wrong}");
    }
    let basic = app
        .client
        .get(app.url("/metrics"))
        .basic_auth("scraper", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(app.state.outbox_depth.reads(), 0, "a refused scrape reads nothing");

    let granted = scrape(Some(TOKEN)).await;
    assert_eq!(granted.status(), 200);
    assert!(granted.text().await.unwrap().contains("slotsync_breaker_trips_total"));
}

#[tokio::test]
async fn without_a_metrics_token_the_route_stays_open() {
    let app = crate::helpers::spawn_app().await;
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn scrapes_in_a_row_read_the_outbox_depth_once_per_interval() {
    let app = crate::helpers::spawn_app_with(|s| s.metrics_cache_secs = 3600).await;
    let scrape = || async {
        let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    };
    let first = scrape().await;
    assert_eq!(app.state.outbox_depth.reads(), 1);
    for _ in 0..5 {
        scrape().await;
    }
    let together = futures::future::join_all((0..8).map(|_| scrape())).await;
    assert_eq!(
        app.state.outbox_depth.reads(),
        1,
        "14 scrapes within the interval read the slots table once"
    );
    assert!(first.contains("slotsync_outbox_slots{state=\"synced\"}"), "{first}");
    assert!(together.iter().all(|t| t.contains("slotsync_outbox_slots")));
}
