//! The public dashboard in a real browser: its numbers follow the statistics API, its CSV is the API's,
//! and it runs under a strict Content-Security-Policy without a console error.

use serde_json::json;

use crate::both_backends;
use crate::browser::Browser;
use crate::helpers::{anchor, TestApp};

both_backends!(
    the_dashboard_is_served_with_a_strict_policy_and_no_inline_code,
    a_users_activities_move_the_dashboard_and_its_csv_is_the_apis,
);

async fn the_dashboard_is_served_with_a_strict_policy_and_no_inline_code(app: TestApp) {
    let r = app.get("/dashboard", None).await;
    r.assert_status(200);
    assert_eq!(r.content_type(), "text/html; charset=utf-8");
    let header = |name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");

    // Scripts are modules loaded from this origin; no element carries inline code or style.
    let html = &r.text;
    assert_eq!(
        html.matches("<script").count(),
        html.matches(r#"<script type="module" src="/assets/"#).count(),
        "{html}"
    );
    assert!(!html.contains(" style="), "{html}");
    assert!(
        !html.contains(" onclick=") && !html.contains("javascript:"),
        "{html}"
    );

    // Every asset the page names is embedded, typed, cacheable for long and under the same policy;
    // nothing is loaded from another origin.
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
    let assets: Vec<&str> = html.split('"').filter(|s| s.starts_with("/assets/")).collect();
    assert!(assets.len() >= 4, "{assets:?}");
    for asset in assets {
        let r = app.get(asset, None).await;
        assert_eq!(r.status, 200, "{asset}");
        let expected = match asset.rsplit_once('.').map(|(_, ext)| ext) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            _ => "image/svg+xml",
        };
        assert_eq!(r.content_type(), expected, "{asset}");
        assert!(r.headers["cache-control"].to_str().unwrap().contains("immutable"));
        assert!(r.headers.contains_key("content-security-policy"), "{asset}");
        // Another build's version of the same file is not served.
        let stale = format!("/assets/000000000000/{}", asset.splitn(4, '/').nth(3).unwrap());
        assert_eq!(app.get(&stale, None).await.status, 404, "{stale}");
    }
}

/// Granted grams of the macro-region `key` as the page drew them.
async fn drawn_granted_g(browser: &Browser, key: &str) -> i64 {
    let value = browser
        .eval(&format!(
            r#"document.querySelector('#regions-total [data-key="{key}"]').dataset.grantedG"#
        ))
        .await;
    value.as_str().unwrap().parse().unwrap()
}

async fn a_users_activities_move_the_dashboard_and_its_csv_is_the_apis(app: TestApp) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let ready = "document.getElementById('main').dataset.state === 'ready'";
    browser.goto(&app.url("/dashboard")).await;
    browser.wait_until(ready).await;
    let before = drawn_granted_g(&browser, "east").await;
    let west_before = drawn_granted_g(&browser, "west").await;

    // A Shenzhen resident walks twice: Guangdong is in the east.
    let token = app.new_user_token().await;
    let mut granted = 0;
    for (i, metres) in [3000, 1500].into_iter().enumerate() {
        let at = (anchor() - chrono::Duration::minutes(30 * (i as i64 + 1))).to_rfc3339();
        let event = json!({"client_event_id": format!("dash-{i}"), "activity_type": "walking",
                           "occurred_at": at, "data": {"distance_m": metres}});
        let r = app.post_activity(&token, &event).await;
        let body = r.assert_status(201);
        assert_eq!(body["status"], "credited", "{body}");
        granted += body["reduction_g"].as_i64().unwrap();
    }

    // New credits reach the statistics within 2 s; the page shows them on its next load.
    let mut after = before;
    for _ in 0..20 {
        browser.client.refresh().await.expect("reload");
        browser.wait_until(ready).await;
        after = drawn_granted_g(&browser, "east").await;
        if after != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(after, before + granted);
    assert_eq!(drawn_granted_g(&browser, "west").await, west_before);
    let total = browser
        .eval(r#"document.querySelector('#totals [data-field="granted_g"]').dataset.value"#)
        .await;
    assert!(total.as_str().unwrap().parse::<i64>().unwrap() >= granted);
    let guangdong = browser
        .eval(r#"document.querySelector('#provinces-chart [data-key="440000"]') !== null"#)
        .await;
    assert_eq!(guangdong, json!(true), "Guangdong is ranked");

    // The province CSV the page downloads is the API's answer to the same query.
    browser.click(r#"a.csv[data-group="province"]"#).await;
    let downloaded = browser.download("tanhui-province.csv").await;
    let href = browser
        .eval(r#"document.querySelector('a.csv[data-group="province"]').getAttribute('href')"#)
        .await;
    let api = app
        .client
        .get(app.url(href.as_str().unwrap()))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(api.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let api = api.text().await.unwrap();
    assert_eq!(String::from_utf8(downloaded).unwrap(), api);
    assert!(api.contains("440000"), "{api}");

    // Keyboard: the window selector is labelled and reachable, and choosing a window reloads the page.
    let label = browser
        .eval("document.querySelector('label[for=window]').textContent")
        .await;
    assert!(label.as_str().unwrap().contains("Window"));
    browser
        .eval("(() => { const s = document.getElementById('window'); s.focus(); s.value = '12m'; s.form.requestSubmit(); return true; })()")
        .await;
    browser
        .wait_until("location.search.includes('window=12m') && document.getElementById('main').dataset.series === 'month'")
        .await;
    browser.wait_until(ready).await;
    assert_eq!(drawn_granted_g(&browser, "east").await, after);

    browser.assert_no_console_errors().await;
    browser.close().await;
}

/// Pictures of the dashboard over `tanhui demo`'s data for the README, desktop and phone width:
/// `cargo test --test api dashboard::screenshots -- --ignored` writes them to `docs/screenshots/`.
#[actix_web::test]
#[ignore = "writes docs/screenshots; run by hand when the dashboard changes"]
async fn screenshots() {
    use crate::browser::Viewport;
    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    let state = app.state.clone();
    actix_web::web::block(move || tanhui::demo::load(&state).map(|_| ()))
        .await
        .unwrap()
        .expect("demo loads");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let shots = [
        (
            "dashboard-desktop.png",
            Viewport::Desktop {
                width: 1280,
                height: 900,
            },
        ),
        (
            "dashboard-phone.png",
            Viewport::Phone {
                width: 390,
                height: 1600,
            },
        ),
    ];
    for (name, viewport) in shots {
        let Some(browser) = Browser::start_with(viewport).await else {
            return;
        };
        browser.goto(&app.url("/dashboard?window=12m")).await;
        browser
            .wait_until("document.getElementById('main').dataset.state === 'ready'")
            .await;
        if let Viewport::Desktop { width, .. } = viewport {
            // The whole page in one picture.
            let height = browser.eval("document.documentElement.scrollHeight").await;
            let height = u32::try_from(height.as_u64().unwrap()).unwrap();
            browser.client.set_window_size(width, height + 120).await.unwrap();
            // Charts redraw 150 ms after a resize.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        std::fs::write(out.join(name), browser.screenshot().await).unwrap();
        browser.assert_no_console_errors().await;
        browser.close().await;
    }
}
