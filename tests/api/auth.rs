//! Registration, sign-in, tokens, throttling.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::{random_phone, Backend, TestApp, TEST_JWT_SECRET};
use crate::{both_backends, both_backends_with};

both_backends!(
    register_login_me,
    business_accounts_need_a_valid_credit_code,
    registration_errors_name_their_fields,
    duplicate_phone_is_409,
    same_phone_registered_concurrently_once,
    wrong_password_and_unknown_phone_look_the_same,
    tampered_expired_and_unsigned_tokens_are_refused,
    access_tokens_expire_as_the_clock_moves,
    refresh_rotates_and_reuse_revokes_the_family,
    refresh_tokens_expire_as_the_clock_moves,
    logout_ends_the_session,
    failed_logins_are_throttled_per_phone,
    concurrent_guesses_get_no_more_than_the_limit,
    display_names_that_could_spoof_are_refused_and_nothing_is_stored,
    logout_ends_the_sessions_access_tokens,
    logout_without_a_refresh_token_ends_every_session,
    a_logout_on_one_instance_ends_the_token_on_another,
    reuse_of_a_refresh_token_ends_the_familys_access_tokens,
);

fn registration(phone: &str) -> Value {
    json!({"phone": phone, "password": "correct horse battery", "display_name": "小明",
           "account_type": "individual", "region_code": "440300"})
}

async fn register_login_me(app: TestApp) {
    let (phone, password, user_id, account_id) = app.register().await;
    let r = app.login(&phone, &password).await;
    let tokens = r.assert_status(200).clone();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);
    let access = tokens["access_token"].as_str().unwrap();

    let r = app.get("/api/v1/me", Some(access)).await;
    let me = r.assert_status(200);
    assert_eq!(me["user_id"], user_id.as_str());
    assert_eq!(me["account_id"], account_id.as_str());
    assert_eq!(me["phone_masked"], format!("{}****{}", &phone[..3], &phone[7..]));
    assert_eq!(me["display_name"], "测试用户");
    assert_eq!(me["account_type"], "individual");
    assert_eq!(me["region_code"], "440300");
    assert_eq!(me["roles"], json!(["user"]));
    assert!(!r.text.contains(&phone), "the full phone must not be returned");

    app.get("/api/v1/me", None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/me", Some("not-a-jwt"))
        .await
        .assert_problem(401, "unauthorized");
}

async fn business_accounts_need_a_valid_credit_code(app: TestApp) {
    let mut body = registration(&random_phone());
    body["account_type"] = json!("business");
    let r = app.post("/api/v1/auth/register", &body, None).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "credit_code");

    body["credit_code"] = json!("91350100M000100Y44"); // check character off by one
    let r = app.post("/api/v1/auth/register", &body, None).await;
    r.assert_problem(422, "validation_failed");
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains('3'));

    body["credit_code"] = json!("91350100M000100Y43");
    app.post("/api/v1/auth/register", &body, None)
        .await
        .assert_status(201);
    let r = app
        .login(body["phone"].as_str().unwrap(), "correct horse battery")
        .await;
    let token = r.assert_status(200)["access_token"].as_str().unwrap().to_string();
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.body["roles"], json!(["business"]));
    assert_eq!(me.body["account_type"], "business");
}

async fn registration_errors_name_their_fields(app: TestApp) {
    let cases: Vec<(&str, Value)> = vec![
        ("phone", json!("12800138000")),
        ("phone", json!("1380013800")),
        ("phone", json!("138001380001")),
        ("phone", json!("1380013800a")),
        ("password", json!("short")),
        ("password", json!("x".repeat(129))),
        ("display_name", json!("  ")),
        ("region_code", json!("999999")),
        ("credit_code", json!("91350100M000100Y43")),
    ];
    for (field, value) in cases {
        let mut body = registration(&random_phone());
        body[field] = value.clone();
        let r = app.post("/api/v1/auth/register", &body, None).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(
            r.body["errors"][0]["field"], field,
            "{field} = {value}: {}",
            r.text
        );
    }
    // A form's empty credit code is no credit code.
    let mut body = registration(&random_phone());
    body["credit_code"] = json!(" ");
    app.post("/api/v1/auth/register", &body, None)
        .await
        .assert_status(201);
    // 10 and 128 characters are fine, counted in characters, not bytes.
    let mut body = registration(&random_phone());
    body["password"] = json!("碳".repeat(10));
    app.post("/api/v1/auth/register", &body, None)
        .await
        .assert_status(201);
    let mut body = registration(&random_phone());
    body["password"] = json!("p".repeat(128));
    app.post("/api/v1/auth/register", &body, None)
        .await
        .assert_status(201);
}

async fn duplicate_phone_is_409(app: TestApp) {
    let phone = random_phone();
    app.post("/api/v1/auth/register", &registration(&phone), None)
        .await
        .assert_status(201);
    app.post("/api/v1/auth/register", &registration(&phone), None)
        .await
        .assert_problem(409, "conflict");
}

async fn same_phone_registered_concurrently_once(app: TestApp) {
    let phone = random_phone();
    let body = registration(&phone);
    let attempts = (0..20).map(|_| app.post("/api/v1/auth/register", &body, None));
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.status.as_u16() == 201).count();
    let conflicts = results.iter().filter(|r| r.status.as_u16() == 409).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        results.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(conflicts, 19);
    app.login(&phone, "correct horse battery")
        .await
        .assert_status(200);
}

async fn wrong_password_and_unknown_phone_look_the_same(app: TestApp) {
    let (phone, _, _, _) = app.register().await;
    let wrong = app.login(&phone, "not the password").await;
    let unknown = app.login(&random_phone(), "not the password").await;
    wrong.assert_problem(401, "invalid_credentials");
    unknown.assert_problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
}

fn forge(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature
    )
}

async fn tampered_expired_and_unsigned_tokens_are_refused(app: TestApp) {
    let token = app.new_user_token().await;
    let parts: Vec<&str> = token.split('.').collect();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    app.get("/api/v1/me", Some(&token)).await.assert_status(200);

    // A changed payload under the original signature.
    let mut elevated = claims.clone();
    elevated["roles"] = json!(["admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(elevated.to_string()),
        parts[2]
    );
    app.get("/api/v1/me", Some(&tampered))
        .await
        .assert_problem(401, "unauthorized");

    // alg: none, with and without a signature part.
    let none = forge(&json!({"alg": "none", "typ": "JWT"}), &elevated, "");
    app.get("/api/v1/me", Some(&none))
        .await
        .assert_problem(401, "unauthorized");
    let none = forge(&json!({"alg": "none", "typ": "JWT"}), &claims, parts[2]);
    app.get("/api/v1/me", Some(&none))
        .await
        .assert_problem(401, "unauthorized");

    // Properly signed, but expired.
    let mut expired = claims.clone();
    let now = chrono::Utc::now().timestamp();
    expired["iat"] = json!(now - 3600);
    expired["exp"] = json!(now - 60);
    let signed = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &expired,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    app.get("/api/v1/me", Some(&signed))
        .await
        .assert_problem(401, "token_expired");

    // Signed with another key.
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-00"),
    )
    .unwrap();
    app.get("/api/v1/me", Some(&foreign))
        .await
        .assert_problem(401, "unauthorized");
}

async fn access_tokens_expire_as_the_clock_moves(app: TestApp) {
    let token = app.new_user_token().await;
    let ttl = app.settings.auth.access_token_ttl_secs as i64;
    let leeway = tanhui::auth::tokens::EXPIRY_LEEWAY_SECS;
    // Up to the leeway past its expiry, the token still stands (a little short of it: time flows on).
    app.clock.advance(chrono::Duration::seconds(ttl + leeway - 2));
    app.get("/api/v1/me", Some(&token)).await.assert_status(200);
    app.clock.advance(chrono::Duration::seconds(3));
    app.get("/api/v1/me", Some(&token))
        .await
        .assert_problem(401, "token_expired");
}

async fn refresh_tokens_expire_as_the_clock_moves(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let early = app.login(&phone, &password).await.assert_status(200).clone();
    let late = app.login(&phone, &password).await.assert_status(200).clone();
    let refresh = |tokens: &Value| json!({"refresh_token": tokens["refresh_token"]});
    let ttl = app.settings.auth.refresh_token_ttl_secs as i64;
    app.clock.advance(chrono::Duration::seconds(ttl - 60));
    app.post("/api/v1/auth/refresh", &refresh(&early), None)
        .await
        .assert_status(200);
    app.clock.advance(chrono::Duration::seconds(61));
    app.post("/api/v1/auth/refresh", &refresh(&late), None)
        .await
        .assert_problem(401, "unauthorized");
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let first = app.login(&phone, &password).await.assert_status(200).clone();
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let r = app
        .post(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": first_refresh}),
            None,
        )
        .await;
    let second = r.assert_status(200).clone();
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(first_refresh, second_refresh);
    app.get("/api/v1/me", Some(second["access_token"].as_str().unwrap()))
        .await
        .assert_status(200);

    // The used token again: refused, and the family is gone, including the token it was traded for.
    app.post(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": first_refresh}),
        None,
    )
    .await
    .assert_problem(401, "refresh_token_reused");
    app.post(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": second_refresh}),
        None,
    )
    .await
    .assert_problem(401, "unauthorized");

    // Another sign-in's family is untouched.
    let other = app.login(&phone, &password).await.assert_status(200).clone();
    app.post(
        "/api/v1/auth/refresh",
        &json!({"refresh_token": other["refresh_token"]}),
        None,
    )
    .await
    .assert_status(200);
    app.post("/api/v1/auth/refresh", &json!({"refresh_token": "made-up"}), None)
        .await
        .assert_problem(401, "unauthorized");
}

async fn logout_ends_the_session(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let tokens = app.login(&phone, &password).await.assert_status(200).clone();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    app.post("/api/v1/auth/logout", &json!({"refresh_token": refresh}), None)
        .await
        .assert_problem(401, "unauthorized");
    let r = app
        .post(
            "/api/v1/auth/logout",
            &json!({"refresh_token": refresh}),
            Some(access),
        )
        .await;
    assert_eq!(r.status.as_u16(), 204);
    app.post("/api/v1/auth/refresh", &json!({"refresh_token": refresh}), None)
        .await
        .assert_problem(401, "unauthorized");
}

async fn failed_logins_are_throttled_per_phone(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let limit = app.settings.throttle.login_failures_per_phone;
    for _ in 0..limit {
        app.login(&phone, "wrong password!")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let r = app.login(&phone, &password).await;
    r.assert_problem(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= app.settings.throttle.login_window_secs + 1);
    // Another phone from the same address is not locked by this one's failures.
    let (other, other_password, _, _) = app.register().await;
    app.login(&other, &other_password).await.assert_status(200);
}

/// Guesses sent all at once are counted before their passwords are checked: no more of them are checked
/// than the limit allows, however many arrive together.
async fn concurrent_guesses_get_no_more_than_the_limit(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let limit = app.settings.throttle.login_failures_per_phone as usize;
    let guesses = (0..4 * limit).map(|_| app.login(&phone, "wrong password!"));
    let answers = futures_util::future::join_all(guesses).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        limit,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        3 * limit,
        "{statuses:?}"
    );
    app.login(&phone, &password)
        .await
        .assert_problem(429, "rate_limited");
}

/// With Redis, every instance counts one phone's failures together: guesses spread over two instances
/// get no more checks than the limit.
#[actix_web::test]
async fn failed_logins_count_across_instances_with_redis() {
    let Some(app) = crate::helpers::spawn(Backend::Postgres).await else {
        return;
    };
    let other = crate::helpers::second_instance(&app).await;
    let (phone, password, _, _) = app.register().await;
    let limit = app.settings.throttle.login_failures_per_phone;
    for i in 0..limit {
        let instance = if i % 2 == 0 { &app } else { &other };
        instance
            .login(&phone, "wrong password!")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    for instance in [&app, &other] {
        instance
            .login(&phone, &password)
            .await
            .assert_problem(429, "rate_limited");
    }
}

both_backends_with!(failed_logins_are_throttled_per_address => |s| s.throttle.login_failures_per_address = 3);

async fn failed_logins_are_throttled_per_address(app: TestApp) {
    // Sign-ins that succeed use up none of the address's allowance (an office behind one address).
    let (phone, password, _, _) = app.register().await;
    for _ in 0..5 {
        app.login(&phone, &password).await.assert_status(200);
    }
    for _ in 0..3 {
        app.login(&random_phone(), "wrong password!")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let (phone, password, _, _) = app.register().await;
    app.login(&phone, &password)
        .await
        .assert_problem(429, "rate_limited");
}

/// The loopback peer is a trusted proxy here, so each request's address is the `X-Forwarded-For` it sends.
fn behind_a_proxy(s: &mut tanhui::config::Settings) {
    s.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

async fn login_from(app: &TestApp, address: &str, phone: &str, password: &str) -> crate::helpers::Resp {
    let request = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"phone": phone, "password": password}));
    app.send(request).await
}

both_backends_with!(guesses_from_elsewhere_never_lock_the_owner_out => super::behind_a_proxy);

/// Failures are counted per (phone, address): five wrong passwords from one address stop that address,
/// and the owner still signs in from theirs.
async fn guesses_from_elsewhere_never_lock_the_owner_out(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let limit = app.settings.throttle.login_failures_per_phone;
    for _ in 0..limit {
        login_from(&app, "203.0.113.7", &phone, "wrong password!")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    login_from(&app, "203.0.113.7", &phone, &password)
        .await
        .assert_problem(429, "rate_limited");
    login_from(&app, "198.51.100.20", &phone, &password)
        .await
        .assert_status(200);
}

both_backends_with!(one_address_spraying_many_phones_is_stopped => |s| {
    super::behind_a_proxy(s);
    s.throttle.login_failures_per_address = 6;
});

/// One guess at each of many phones from one address: the per-address limit ends the spray, for that
/// address only.
async fn one_address_spraying_many_phones_is_stopped(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    for _ in 0..app.settings.throttle.login_failures_per_address {
        login_from(&app, "203.0.113.9", &random_phone(), "wrong password!")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    login_from(&app, "203.0.113.9", &random_phone(), "wrong password!")
        .await
        .assert_problem(429, "rate_limited");
    login_from(&app, "203.0.113.9", &phone, &password)
        .await
        .assert_problem(429, "rate_limited");
    login_from(&app, "198.51.100.21", &phone, &password)
        .await
        .assert_status(200);
}

both_backends_with!(a_saturated_password_pool_refuses_with_503_then_recovers => |s| {
    // Hashes that take tens of milliseconds, one thread and one place in the queue.
    s.auth.argon2_memory_kib = 16384;
    s.auth.argon2_iterations = 3;
    s.auth.password_threads = 1;
    s.auth.password_queue = 1;
});

/// Sign-ins beyond what the password threads and their queue hold are refused at once with 503 and
/// `Retry-After` (never a 500), and cost the caller none of its failed-login allowance.
async fn a_saturated_password_pool_refuses_with_503_then_recovers(app: TestApp) {
    let mut users = Vec::new();
    for _ in 0..16 {
        let (phone, password, _, _) = app.register().await;
        users.push((phone, password));
    }
    let mut refused = None;
    for _round in 0..5 {
        let logins = users.iter().map(|(phone, password)| app.login(phone, password));
        let answers = futures_util::future::join_all(logins).await;
        for r in &answers {
            assert!(
                [200, 503].contains(&r.status.as_u16()),
                "unexpected status; body: {}",
                r.text
            );
        }
        if let Some(r) = answers.into_iter().find(|r| r.status.as_u16() == 503) {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("16 sign-ins at once on one thread with one queue place: some refused");
    refused.assert_problem(503, "unavailable");
    let retry_after = refused.headers.get("retry-after").expect("Retry-After");
    assert!(retry_after.to_str().unwrap().parse::<u64>().unwrap() >= 1);
    for (phone, password) in &users {
        app.login(phone, password).await.assert_status(200);
    }
}

/// Bidirectional controls, zero-width characters and names of only whitespace are refused, naming
/// `display_name`, and the refused registration leaves nothing behind: the phone stays free.
async fn display_names_that_could_spoof_are_refused_and_nothing_is_stored(app: TestApp) {
    let names = [
        "\u{202E}nimda",
        "ad\u{202D}min",
        "\u{2066}小明\u{2069}",
        "小\u{200B}明",
        "\u{200C}",
        "小明\u{200D}",
        "\u{2060}admin",
        "\u{FEFF}小明",
        " \u{3000}\t ",
    ];
    for name in names {
        let phone = random_phone();
        let mut body = registration(&phone);
        body["display_name"] = json!(name);
        let r = app.post("/api/v1/auth/register", &body, None).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(
            r.body["errors"][0]["field"], "display_name",
            "{name:?}: {}",
            r.text
        );
        app.login(&phone, "correct horse battery")
            .await
            .assert_problem(401, "invalid_credentials");
        app.post("/api/v1/auth/register", &registration(&phone), None)
            .await
            .assert_status(201);
    }
}

fn access_of(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

/// After logout the session's access token answers `session_revoked`; another session of the same user
/// carries on.
async fn logout_ends_the_sessions_access_tokens(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let ended = app.login(&phone, &password).await.assert_status(200).clone();
    let live = app.login(&phone, &password).await.assert_status(200).clone();
    app.post(
        "/api/v1/auth/logout",
        &json!({"refresh_token": ended["refresh_token"]}),
        Some(access_of(&ended)),
    )
    .await
    .assert_status(204);
    app.get("/api/v1/me", Some(access_of(&ended)))
        .await
        .assert_problem(401, "session_revoked");
    app.get("/api/v1/me", Some(access_of(&live)))
        .await
        .assert_status(200);
}

async fn logout_without_a_refresh_token_ends_every_session(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let first = app.login(&phone, &password).await.assert_status(200).clone();
    let second = app.login(&phone, &password).await.assert_status(200).clone();
    let r = app
        .send(
            app.client
                .post(app.url("/api/v1/auth/logout"))
                .bearer_auth(access_of(&first)),
        )
        .await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text);
    for tokens in [&first, &second] {
        app.get("/api/v1/me", Some(access_of(tokens)))
            .await
            .assert_problem(401, "session_revoked");
    }
    let other_user = app.new_user_token().await;
    app.get("/api/v1/me", Some(&other_user)).await.assert_status(200);
}

/// Two instances on one database (and one Redis, on PostgreSQL): a logout on one ends the token on the
/// other within a second.
async fn a_logout_on_one_instance_ends_the_token_on_another(app: TestApp) {
    let other = crate::helpers::second_instance(&app).await;
    let (phone, password, _, _) = app.register().await;
    let tokens = app.login(&phone, &password).await.assert_status(200).clone();
    other
        .get("/api/v1/me", Some(access_of(&tokens)))
        .await
        .assert_status(200);
    app.post(
        "/api/v1/auth/logout",
        &json!({"refresh_token": tokens["refresh_token"]}),
        Some(access_of(&tokens)),
    )
    .await
    .assert_status(204);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let r = other.get("/api/v1/me", Some(access_of(&tokens))).await;
        if r.status.as_u16() == 401 {
            r.assert_problem(401, "session_revoked");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still accepted a second after logout: {}",
            r.text
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A rotated refresh token presented again revokes its family, and with it every access token the
/// family was given; another sign-in of the same user is untouched.
async fn reuse_of_a_refresh_token_ends_the_familys_access_tokens(app: TestApp) {
    let (phone, password, _, _) = app.register().await;
    let first = app.login(&phone, &password).await.assert_status(200).clone();
    let other = app.login(&phone, &password).await.assert_status(200).clone();
    let refresh = json!({"refresh_token": first["refresh_token"]});
    let second = app
        .post("/api/v1/auth/refresh", &refresh, None)
        .await
        .assert_status(200)
        .clone();
    app.get("/api/v1/me", Some(access_of(&second)))
        .await
        .assert_status(200);
    app.post("/api/v1/auth/refresh", &refresh, None)
        .await
        .assert_problem(401, "refresh_token_reused");
    for tokens in [&first, &second] {
        app.get("/api/v1/me", Some(access_of(tokens)))
            .await
            .assert_problem(401, "session_revoked");
    }
    app.get("/api/v1/me", Some(access_of(&other)))
        .await
        .assert_status(200);
}
