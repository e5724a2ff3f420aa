//! Rate limits: per account on writes, per key on signed calls, shared by instances through Redis.

use serde_json::json;

use crate::both_backends_with;
use crate::helpers::{second_instance, Key, TestApp};

both_backends_with!(a_flood_from_one_account_is_limited_and_others_carry_on => |s| {
    s.throttle.account_writes_per_sec = 1;
    s.throttle.account_write_burst = 4;
});

both_backends_with!(a_flood_from_one_key_is_limited_and_others_carry_on => |s| {
    s.throttle.key_requests_per_sec = 1;
    s.throttle.key_request_burst = 3;
});

/// A write that touches nothing of value: a profile change.
async fn write(app: &TestApp, token: &str) -> crate::helpers::Resp {
    app.send(
        app.client
            .patch(app.url("/api/v1/me"))
            .bearer_auth(token)
            .json(&json!({"display_name": "小明"})),
    )
    .await
}

async fn a_flood_from_one_account_is_limited_and_others_carry_on(app: TestApp) {
    let other_instance = second_instance(&app).await;
    let flooder = app.new_user_token().await;
    let bystander = app.new_user_token().await;
    // A burst of four, spread over two instances; with Redis the instances share one allowance.
    let mut answers = Vec::new();
    for i in 0..12 {
        let instance = if i % 2 == 0 { &app } else { &other_instance };
        answers.push(write(instance, &flooder).await.status.as_u16());
    }
    let admitted = answers.iter().filter(|s| **s == 200).count();
    let shared = app.state.cache.is_shared();
    // One instance alone admits the burst and perhaps one more as a second passes; two without a shared
    // allowance would admit up to twice that.
    let most = if shared { 6 } else { 12 };
    assert!((4..=most).contains(&admitted), "{answers:?}");
    if shared {
        assert!(answers.contains(&429), "{answers:?}");
    }
    let refused = write(&app, &flooder).await;
    refused.assert_problem(429, "rate_limited");
    let wait: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // Reads are not writes; another account's writes are its own.
    app.get("/api/v1/me", Some(&flooder)).await.assert_status(200);
    for instance in [&app, &other_instance] {
        write(instance, &bystander).await.assert_status(200);
    }
}

async fn a_flood_from_one_key_is_limited_and_others_carry_on(app: TestApp) {
    let admin = app.admin_token().await;
    let onboard = |name: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let r = app
                .post(
                    "/api/v1/admin/partners",
                    &json!({"name": name, "kind": "transit", "region_codes": ["440300"]}),
                    Some(&admin),
                )
                .await;
            Key::from_credentials(r.assert_status(201))
        }
    };
    let busy = onboard("busy").await;
    let quiet = onboard("quiet").await;
    let path = "/api/v1/partner/offers";
    for _ in 0..3 {
        app.signed(&busy, "GET", path, None).await.assert_status(200);
    }
    let refused = app.signed(&busy, "GET", path, None).await;
    refused.assert_problem(429, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    // A forged call under the busy key is refused for its signature, and spends none of its allowance.
    app.signed(&quiet, "GET", path, None).await.assert_status(200);
}
