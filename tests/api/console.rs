//! The administrators' console in a real browser (headless Chromium), and its formula check endpoint.

use serde_json::{json, Value};

use fantoccini::Locator;

use crate::browser::Browser;
use crate::helpers::{TestApp, ADMIN_PASSWORD};

crate::both_backends!(
    the_shell_is_public_and_sets_a_strict_policy,
    the_formula_check_places_problems_and_previews_a_sample,
    two_administrators_draft_simulate_and_activate_in_the_browser,
);

// Access tokens of 8 s: the console must refresh them for a session to outlive them.
crate::both_backends_with!(the_session_outlives_its_access_tokens_and_decides_reviews => |s| {
    s.auth.access_token_ttl_secs = 8;
});

async fn the_shell_is_public_and_sets_a_strict_policy(app: TestApp) {
    let r = app.send(app.client.get(app.url("/console"))).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("id=\"signin-form\""), "the sign-in page");
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        !r.text.contains("<script>") && !r.text.contains(" style="),
        "no inline script or style"
    );
    for src in ["http://", "https://", "//"] {
        assert!(
            !r.text.contains(&format!("src=\"{src}")),
            "nothing from another origin"
        );
    }
    // The script is an embedded asset of this origin, named by the page.
    let script = r
        .text
        .split("<script type=\"module\" src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        script.starts_with("/assets/") && script.ends_with("/console/main.js"),
        "{script}"
    );
    let js = app.send(app.client.get(app.url(script))).await;
    assert_eq!(js.status, 200);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    for module in ["main.js", "ui.js", "api.js", "chart.js"] {
        let js = app
            .send(app.client.get(app.url(&script.replace("main.js", module))))
            .await;
        assert_eq!(js.status, 200, "{module}");
        assert!(
            !js.text.contains("innerHTML"),
            "{module} builds the DOM from nodes"
        );
    }
    // The data behind it needs an administrator.
    app.get("/api/v1/admin/audit", None)
        .await
        .assert_problem(401, "unauthorized");
}

async fn check(app: &TestApp, token: &str, body: &Value) -> Value {
    app.post("/api/v1/admin/methodologies/validate", body, Some(token))
        .await
        .assert_status(200)
        .clone()
}

async fn the_formula_check_places_problems_and_previews_a_sample(app: TestApp) {
    let admin = app.admin_token().await;
    let draft = |formula: &str| {
        json!({"activity_type": "transit.bus", "region_code": "CN", "formula": formula,
            "parameters": {"k": {"value": "80", "unit": "g/ride", "source": "test"}},
            "sample": {"data": {"count": 3, "distance_m": 5000}, "evidence": "trace"}})
    };
    let r = check(&app, &admin, &draft("count * (k")).await;
    assert_eq!(r["valid"], false);
    let p = &r["problems"][0];
    assert_eq!(
        (p["field"].as_str(), p["line"].as_u64(), p["column"].as_u64()),
        (Some("formula"), Some(1), Some(11))
    );
    assert_eq!((p["start"].as_u64(), p["end"].as_u64()), (Some(10), Some(11)));
    assert!(r.get("preview").is_none());

    let r = check(&app, &admin, &draft("count * kk")).await;
    let p = &r["problems"][0];
    assert!(
        p["message"].as_str().unwrap().contains("unknown name `kk`"),
        "{p}"
    );
    assert_eq!((p["start"].as_u64(), p["end"].as_u64()), (Some(8), Some(10)));
    assert_eq!(r["variables"], json!(["count", "kk"]));

    let r = check(&app, &admin, &draft("count * k")).await;
    assert_eq!(r["valid"], true, "{r}");
    assert_eq!(r["problems"], json!([]));
    assert_eq!(r["preview"]["reduction_g"], 240);
    assert_eq!(r["preview"]["evidence"], "trace");
    assert!(r["preview"]["breakdown"].as_array().unwrap().len() >= 3);

    // The sample is checked like an activity's data; a parameter like a draft's.
    let mut body = draft("count * k");
    body["sample"]["data"] = json!({"distance_m": 5000});
    let r = check(&app, &admin, &body).await;
    assert_eq!(r["valid"], true);
    assert_eq!(r["preview_problem"]["code"], "missing_field", "{r}");
    let mut body = draft("count * k");
    body["parameters"]["k"]["value"] = json!("eighty");
    body["activity_type"] = json!("no.such.type");
    let r = check(&app, &admin, &body).await;
    let fields: Vec<&str> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"activity_type") && fields.contains(&"parameters.k.value"),
        "{fields:?}"
    );

    let doc = app.get("/api/v1/openapi.json", None).await;
    let path = &doc.assert_status(200)["paths"]["/api/v1/admin/methodologies/validate"]["post"];
    assert!(
        path["requestBody"].is_object() && path["responses"]["200"].is_object(),
        "{path}"
    );

    // Bounded like a draft, and for administrators only.
    let r = check(&app, &admin, &draft(&"k+".repeat(2100))).await;
    assert_eq!(
        r["problems"][0]["message"],
        "formula too long or too deeply nested"
    );
    let user = app.new_user_token().await;
    app.post("/api/v1/admin/methodologies/validate", &draft("k"), Some(&user))
        .await
        .assert_problem(403, "forbidden");
    app.post(
        "/api/v1/admin/methodologies/validate",
        &json!({"formula": "k"}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
}

/// Bus rides in three provinces (east, central, west) over the last hours, for a simulation to show.
async fn rides(app: &TestApp) {
    let now = chrono::Utc::now();
    let user = app.new_user_token().await;
    for (i, region) in ["420100", "610000", "440100", "420100"].iter().enumerate() {
        let ride = json!({"client_event_id": format!("ride-{i}"), "activity_type": "transit.bus", "region_code": region,
            "evidence": "trace", "occurred_at": (now - chrono::Duration::hours(i as i64 + 1)).to_rfc3339(),
            "data": {"count": 1, "distance_m": 5000}});
        app.post_activity(&user, &ride).await.assert_status(201);
    }
}

/// A string as a JavaScript literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// The index of the first shown element matching `css` whose text contains `text`, once there is one.
async fn shown(b: &Browser, css: &str, text: &str) -> usize {
    let index = format!(
        "[...document.querySelectorAll({})].findIndex(e => e.getClientRects().length > 0 && e.textContent.includes({}))",
        js(css),
        js(text)
    );
    b.wait_until(&format!("{index} >= 0")).await;
    b.eval(&index).await.as_u64().unwrap() as usize
}

async fn find(b: &Browser, css: &str) {
    shown(b, css, "").await;
}

async fn find_text(b: &Browser, css: &str, text: &str) {
    shown(b, css, text).await;
}

/// Clicks, as a person would, the first shown element matching `css` whose text contains `text`.
async fn click_text(b: &Browser, css: &str, text: &str) {
    let i = shown(b, css, text).await;
    let all = b.client.find_all(Locator::Css(css)).await.unwrap();
    all[i].click().await.unwrap();
}

/// Types into a field, replacing what it held (keystrokes, so the page sees `input` events).
async fn type_into(b: &Browser, css: &str, text: &str) {
    find(b, css).await;
    let field = b.client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn count(b: &Browser, css: &str) -> u64 {
    b.eval(&format!("document.querySelectorAll({}).length", js(css)))
        .await
        .as_u64()
        .unwrap()
}

async fn attribute(b: &Browser, css: &str, name: &str) -> Value {
    b.eval(&format!(
        "document.querySelector({}).getAttribute({})",
        js(css),
        js(name)
    ))
    .await
}

async fn sign_in(b: &Browser, app: &TestApp, phone: &str) {
    b.goto(&app.url("/console")).await;
    type_into(b, "#phone", phone).await;
    type_into(b, "#password", ADMIN_PASSWORD).await;
    b.click("#signin-submit").await;
    find(b, "#signout").await;
}

async fn sign_out(b: &Browser) {
    b.click("#signout").await;
    find(b, "#signin-form").await;
}

/// Picks an option of a select by its value.
async fn choose(b: &Browser, select: &str, value: &str) {
    let option = format!("{select} option[value=\"{value}\"]");
    b.client
        .find(Locator::Css(&option))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// No script error, no policy violation: the only complaints allowed are the 4xx answers the test
/// provoked on purpose.
async fn assert_quiet(b: &Browser) {
    let problems: Vec<String> = b
        .console_errors()
        .await
        .into_iter()
        .filter(|m| !m.contains("the server responded with a status of 4"))
        .collect();
    assert!(problems.is_empty(), "the console logged: {problems:?}");
}

/// A picture of the whole page into `docs/screenshots/`, when `TANHUI_SCREENSHOTS` is set (so an
/// ordinary run leaves the tree alone), on SQLite (one set is enough).
async fn shoot(app: &TestApp, b: &Browser, name: &str) {
    if std::env::var_os("TANHUI_SCREENSHOTS").is_none() || !app.settings.database.url.starts_with("sqlite") {
        return;
    }
    let height = b
        .eval("Math.min(4000, document.documentElement.scrollHeight)")
        .await
        .as_u64()
        .unwrap_or(900) as u32;
    b.client
        .set_window_size(1280, height.max(900) + 120)
        .await
        .unwrap();
    let png = b.screenshot().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/screenshots")
        .join(name);
    std::fs::write(path, png).unwrap();
    b.client.set_window_size(1280, 900).await.unwrap();
}

async fn two_administrators_draft_simulate_and_activate_in_the_browser(app: TestApp) {
    let Some(b) = Browser::start().await else { return };
    rides(&app).await;
    let (maker, _) = app.administrator_account("CN").await;
    let (checker, _) = app.administrator_account("CN").await;
    let (guangdong, _) = app.administrator_account("440000").await;
    let national = app.admin_token().await;
    let partner = json!({"name": "深圳通", "kind": "transit", "region_codes": ["440300"]});
    app.post("/api/v1/admin/partners", &partner, Some(&national))
        .await
        .assert_status(201);
    let provider = json!({"name": "湖北公交", "kind": "transit", "region_codes": ["420000"]});
    app.post("/api/v1/admin/providers", &provider, Some(&national))
        .await
        .assert_status(201);

    // The sign-in page, by keyboard: phone, password, then the button.
    b.goto(&app.url("/console")).await;
    find(&b, "#phone").await;
    let phone = b.client.find(Locator::Css("#phone")).await.unwrap();
    phone.click().await.unwrap();
    phone.send_keys("\u{E004}").await.unwrap();
    assert_eq!(b.eval("document.activeElement.id").await, "password");
    let password = b.client.find(Locator::Css("#password")).await.unwrap();
    password.send_keys("\u{E004}").await.unwrap();
    assert_eq!(b.eval("document.activeElement.id").await, "signin-submit");
    shoot(&app, &b, "console-signin.png").await;

    // The maker drafts: a bad formula is refused inline, the fixed one previews the sample.
    sign_in(&b, &app, &maker).await;
    find_text(&b, "#who", "national administrator").await;
    find_text(&b, "caption", "transit.bus").await;
    shoot(&app, &b, "console-methodologies.png").await;
    b.goto(&app.url("/console#/editor")).await;
    find(&b, "#draft-form").await;
    choose(&b, "#draft-form select[name=activity_type]", "transit.bus").await;
    choose(&b, "#draft-form select[name=region_code]", "CN").await;
    let from = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    type_into(&b, "#draft-form input[name=effective_from]", &from).await;
    let parameters = r#"{"k": {"value": "100", "unit": "g/ride", "source": "operator survey"}}"#;
    type_into(&b, "#draft-form textarea[name=parameters]", parameters).await;
    let sample = r#"{"count": 2, "distance_m": 5000}"#;
    type_into(&b, "#draft-form textarea[name=sample]", sample).await;
    type_into(&b, "#draft-form textarea[name=citation]", "Console test, 2026").await;
    let formula = "#draft-form textarea[name=formula]";
    type_into(&b, formula, "count * (k").await;
    find_text(&b, ".formula-problem", "syntax error at line 1, column 11").await;
    assert_eq!(attribute(&b, formula, "aria-invalid").await, "true");
    find(&b, "#formula-marked mark").await;
    type_into(&b, formula, "count * kk").await;
    find_text(&b, ".formula-problem", "unknown name `kk`").await;
    shoot(&app, &b, "console-editor-refused.png").await;
    type_into(&b, formula, "count * k").await;
    find_text(&b, "#formula-status", "Formula valid").await;
    find_text(&b, "#preview", "200 g").await;
    assert_eq!(attribute(&b, formula, "aria-invalid").await, "false");
    click_text(&b, "#draft-form button", "Create draft").await;
    find_text(&b, "#save-outcome", "saved").await;
    let saved = b
        .eval("document.querySelector('#save-outcome').textContent")
        .await;
    let id = saved
        .as_str()
        .unwrap()
        .split("(id ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();

    // …simulates it and sees the chart, before anyone activates it.
    click_text(&b, "#simulation button", "Simulate").await;
    find(&b, "#simulation-result svg.chart").await;
    find_text(&b, "#simulation-result", "4 activities").await;
    assert!(
        count(&b, "#simulation-result svg.chart rect.bar").await >= 4,
        "a bar for all and one per region"
    );
    shoot(&app, &b, "console-simulation.png").await;
    // The maker cannot activate their own draft: the console says so rather than offering it.
    b.goto(&app.url(&format!("/console#/approve/{id}"))).await;
    find_text(&b, ".notice", "a second administrator must activate it").await;
    assert_eq!(count(&b, "#activate").await, 0);
    assert_quiet(&b).await;
    sign_out(&b).await;

    // The checker activates it with the diff in view.
    sign_in(&b, &app, &checker).await;
    click_text(&b, "a", "Review and activate").await;
    find_text(&b, "table", "count * k").await;
    find_text(&b, "td", "parameters.k").await;
    shoot(&app, &b, "console-activation.png").await;
    b.click("#activate").await;
    find_text(&b, "#activation-outcome", "is active").await;
    let v = app.get(&format!("/api/v1/methodologies/{id}"), None).await;
    assert_eq!(v.assert_status(200)["status"], "active");

    // The other pages draw for a national administrator.
    for (view, expect, picture) in [
        ("region-parameters", "Versions", "console-region-parameters.png"),
        ("activity-types", "Pending changes", "console-activity-types.png"),
        ("reviews", "Flagged activities", "console-reviews.png"),
        ("partners", "深圳通", "console-partners.png"),
        ("audit", "methodology_version", "console-audit.png"),
    ] {
        b.goto(&app.url(&format!("/console#/{view}"))).await;
        find_text(&b, "main", expect).await;
        shoot(&app, &b, picture).await;
    }
    // Keys rotate from the console: the new secret is shown once.
    b.goto(&app.url("/console#/partners")).await;
    click_text(&b, "button", "New key for 深圳通").await;
    find_text(&b, "#key-outcome .secret", "shown once").await;
    assert_quiet(&b).await;
    sign_out(&b).await;

    // A region administrator sees national versions but no action on them, drafts only in its subtree,
    // and an out-of-scope refusal is shown as such.
    sign_in(&b, &app, &guangdong).await;
    find_text(&b, "#who", "region administrator of 440000").await;
    find_text(&b, "caption", "transit.bus · CN").await;
    assert_eq!(
        count(&b, "a[href^='#/approve/']").await,
        0,
        "nothing to approve outside its scope"
    );
    find_text(&b, "td", "outside your scope").await;
    b.goto(&app.url("/console#/editor")).await;
    find(&b, "#draft-form").await;
    let regions = b
        .eval(
            "[...document.querySelectorAll('#draft-form select[name=region_code] option')].map(o => o.value)",
        )
        .await;
    let regions: Vec<&str> = regions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        !regions.is_empty() && regions.iter().all(|r| r.starts_with("44")),
        "{regions:?}"
    );
    b.goto(&app.url("/console#/activity-types")).await;
    find_text(&b, ".notice", "needs a national administrator").await;
    let offered = b
        .eval("[...document.querySelectorAll('main button')].map(b => b.textContent)")
        .await;
    assert_eq!(offered, json!([]), "no approve or propose buttons");
    // Were the page to offer a region outside the scope, the API's refusal reads as such.
    b.goto(&app.url("/console#/region-parameters")).await;
    find_text(&b, "form.card", "New draft").await;
    b.eval(
        "(() => { const s = document.querySelector('form.card select[name=region_code]'); \
         s.append(new Option('420000', '420000')); s.value = '420000'; })()",
    )
    .await;
    click_text(&b, "form.card button", "Create draft").await;
    find_text(&b, ".problem.out-of-scope", "Outside your scope").await;
    shoot(&app, &b, "console-out-of-scope.png").await;
    assert_quiet(&b).await;
    b.close().await;
}

/// A parcel type whose counts are grams: 200,000 of them is above the per-event plausibility bound, so
/// the activity waits in the review queue.
async fn flagged_activity(app: &TestApp) -> String {
    let (maker, checker) = (app.admin_token().await, app.admin_token().await);
    let kind = json!({"code": "test.parcel", "name": "parcel", "unit": "parcel", "travel": false,
        "data_schema": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 1}}, "required": ["count"]}});
    app.post("/api/v1/admin/activity-types", &kind, Some(&maker))
        .await
        .assert_status(201);
    let version = json!({"activity_type": "test.parcel", "region_code": "CN",
        "effective_from": "2020-01-01T00:00:00+08:00", "formula": "count * k",
        "parameters": {"k": {"value": "1", "unit": "g/parcel", "source": "test"}}, "citation": "test fixture"});
    app.in_force(&maker, &checker, &version).await;
    let user = app.new_user_token().await;
    let big = json!({"client_event_id": "big", "activity_type": "test.parcel", "region_code": "440300",
        "occurred_at": chrono::Utc::now().to_rfc3339(), "evidence": "trace", "data": {"count": 200000}});
    let r = app.post_activity(&user, &big).await;
    assert_eq!(r.assert_status(201)["status"], "flagged");
    r.body["activity_id"].as_str().unwrap().to_string()
}

async fn the_session_outlives_its_access_tokens_and_decides_reviews(app: TestApp) {
    let Some(b) = Browser::start().await else { return };
    let activity = flagged_activity(&app).await;
    let (reviewer, _) = app.administrator_account("440000").await;
    sign_in(&b, &app, &reviewer).await;
    b.goto(&app.url("/console#/reviews")).await;
    find_text(&b, "td", &activity).await;
    // Two lifetimes of an access token later, the session still acts, without a refused call.
    tokio::time::sleep(std::time::Duration::from_secs(17)).await;
    b.click(&format!("input[aria-label='Select activity {activity}']"))
        .await;
    type_into(&b, "main input[name=note]", "checked with the shipper").await;
    click_text(&b, "main button", "Approve selected").await;
    find_text(&b, "#review-outcome", "credited").await;
    b.assert_no_console_errors().await;
    let admin = app.admin_token().await;
    let stored = app
        .get(&format!("/api/v1/activities/{activity}"), Some(&admin))
        .await;
    assert_eq!(stored.assert_status(200)["status"], "credited");
    shoot(&app, &b, "console-reviews-decided.png").await;
    // Sign-out ends the session: the form is back and the tokens are gone from the page.
    sign_out(&b).await;
    b.goto(&app.url("/console#/audit")).await;
    find(&b, "#signin-form").await;
    b.close().await;
}
