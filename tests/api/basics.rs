//! Probes, the OpenAPI document, request ids, and framework errors as problem+json.

use serde_json::json;

use crate::both_backends;
use crate::helpers::TestApp;

both_backends!(
    health_and_readiness,
    openapi_document_lists_the_routes,
    openapi_lists_codes_and_states_as_enums,
    unknown_routes_and_methods_are_problems,
    malformed_bodies_are_client_errors,
    oversized_bodies_are_413,
    nul_characters_are_refused_everywhere,
    request_ids_are_returned,
);

async fn health_and_readiness(app: TestApp) {
    let r = app.get("/healthz", None).await;
    assert_eq!(r.assert_status(200)["status"], "ok");
    let r = app.get("/readyz", None).await;
    let body = r.assert_status(200);
    assert_eq!(body["database"], "ok");
    let expected_redis = if app.settings.redis_url().is_some() {
        "ok"
    } else {
        "not_configured"
    };
    assert_eq!(body["redis"], expected_redis);
}

async fn openapi_document_lists_the_routes(app: TestApp) {
    let r = app.get("/api/v1/openapi.json", None).await;
    let doc = r.assert_status(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/me",
        "/readyz",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

/// The schema at `schema`, following `$ref`s into the document's components.
fn resolve<'a>(doc: &'a serde_json::Value, schema: &'a serde_json::Value) -> &'a serde_json::Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/schemas/").unwrap();
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The texts an enum schema lists (also when wrapped in `oneOf`/`allOf` for a nullable field).
fn enum_texts(doc: &serde_json::Value, schema: &serde_json::Value) -> Vec<String> {
    let schema = resolve(doc, schema);
    if let Some(texts) = schema["enum"].as_array() {
        return texts
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect();
    }
    ["oneOf", "allOf", "anyOf"]
        .iter()
        .filter_map(|k| schema[*k].as_array())
        .flatten()
        .flat_map(|s| enum_texts(doc, s))
        .collect()
}

async fn openapi_lists_codes_and_states_as_enums(app: TestApp) {
    let r = app.get("/api/v1/openapi.json", None).await;
    let doc = r.assert_status(200);
    let schemas = &doc["components"]["schemas"];
    let codes = enum_texts(doc, &schemas["Problem"]["properties"]["code"]);
    for code in [
        "insufficient_funds",
        "validation_failed",
        "token_expired",
        "not_found",
    ] {
        assert!(codes.contains(&code.to_string()), "{code} missing from {codes:?}");
    }
    let status = enum_texts(doc, &schemas["VersionView"]["properties"]["status"]);
    assert_eq!(status, ["draft", "active", "retired"]);
    let roles = &schemas["Me"]["properties"]["roles"]["items"];
    assert_eq!(enum_texts(doc, roles), ["user", "business", "admin"]);
    let account_type = &schemas["Me"]["properties"]["account_type"];
    assert_eq!(enum_texts(doc, account_type), ["individual", "business"]);
}

async fn unknown_routes_and_methods_are_problems(app: TestApp) {
    app.get("/api/v1/nope", None)
        .await
        .assert_problem(404, "not_found");
    app.get("/nope", None).await.assert_problem(404, "not_found");
    // GET on a POST-only route, DELETE on a route with parameters, PUT where GET and POST are served:
    // 405 naming the methods that are.
    let allowed = |r: &crate::helpers::Resp| {
        r.assert_problem(405, "method_not_allowed");
        r.headers.get("allow").map(|v| v.to_str().unwrap().to_string())
    };
    let r = app.get("/api/v1/auth/login", None).await;
    assert_eq!(allowed(&r).as_deref(), Some("POST"));
    let r = app
        .send(app.client.delete(app.url("/api/v1/redemptions/7")))
        .await;
    assert_eq!(allowed(&r).as_deref(), Some("GET"));
    let r = app.send(app.client.put(app.url("/api/v1/activities"))).await;
    assert_eq!(allowed(&r).as_deref(), Some("POST, GET"));
    app.get("/api/v1/auth/nope", None)
        .await
        .assert_problem(404, "not_found");
}

async fn malformed_bodies_are_client_errors(app: TestApp) {
    let path = "/api/v1/auth/register";
    app.post_raw(path, b"{not json".to_vec(), None)
        .await
        .assert_problem(400, "malformed_json");
    app.post_raw(path, vec![0xff, 0xfe, b'{'], None)
        .await
        .assert_problem(400, "malformed_json");
    app.post_raw(path, Vec::new(), None)
        .await
        .assert_problem(400, "malformed_json");
    let valid = json!({"phone": "13800138000", "password": "0123456789", "display_name": "x",
                       "account_type": "individual", "region_code": "440300"});

    let mut wrong_type = valid.clone();
    wrong_type["phone"] = json!(13800138000u64);
    let r = app.post(path, &wrong_type, None).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "phone");

    let mut unknown_enum = valid.clone();
    unknown_enum["account_type"] = json!("robot");
    let r = app.post(path, &unknown_enum, None).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "account_type");

    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove("password");
    app.post(path, &missing, None)
        .await
        .assert_problem(422, "validation_failed");

    let huge = br#"{"phone": 1e999999, "password": "x"}"#.to_vec();
    let r = app.post_raw(path, huge, None).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert_eq!(r.content_type(), "application/problem+json");

    app.post(path, &json!([1, 2, 3]), None)
        .await
        .assert_problem(422, "validation_failed");
    // Nothing was half-written by any of these.
    let r = app.post(path, &valid, None).await;
    r.assert_status(201);
}

async fn oversized_bodies_are_413(app: TestApp) {
    let limit = app.settings.server.body_limit_bytes;
    let big = format!(r#"{{"phone": "{}"}}"#, "1".repeat(limit + 10));
    let r = app
        .post_raw("/api/v1/auth/register", big.into_bytes(), None)
        .await;
    r.assert_problem(413, "payload_too_large");
    // Chunked, without a Content-Length to refuse up front.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..(limit / 4096 + 2)).map(|_| Ok(vec![b' '; 4096])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = app
        .send(
            app.client
                .post(app.url("/api/v1/auth/login"))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
    r.assert_problem(413, "payload_too_large");
}

async fn request_ids_are_returned(app: TestApp) {
    let r = app.get("/healthz", None).await;
    let id = r.headers.get("x-request-id").expect("request id header");
    assert_eq!(id.len(), 36);
    let r = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-request-id", "client-trace-42"),
        )
        .await;
    assert_eq!(r.headers.get("x-request-id").unwrap(), "client-trace-42");
    let r = app.get("/api/v1/nope", None).await;
    assert!(r.headers.get("x-request-id").is_some());
}

/// A writer's own PostgreSQL connection keeps its key lookups prepared, so their generic plans must never
/// scan: planned on a young table, a scan would be kept while the table grows. Pooled connections plan
/// such lookups afresh instead, and the contrast shows what the writer's setting prevents.
#[actix_web::test]
async fn writer_connections_plan_key_lookups_through_an_index() {
    use diesel::connection::SimpleConnection;
    use diesel::{QueryableByName, RunQueryDsl};
    use tanhui::db::AnyConnection;

    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        text: String,
    }
    /// The generic plan of a two-key lookup on a table of this session analyzed while it held ten rows.
    fn generic_plan(conn: &mut AnyConnection) -> String {
        conn.batch_execute(
            "CREATE TEMPORARY TABLE young (a BIGINT, b TEXT, n BIGINT, PRIMARY KEY (a, b));
             INSERT INTO young SELECT g, 'k' || g, g FROM generate_series(1, 10) g;
             ANALYZE young;
             SET plan_cache_mode = force_generic_plan;
             PREPARE lookup (BIGINT, TEXT, BIGINT, TEXT) AS
                 SELECT n FROM young WHERE (a = $1 AND b = $2) OR (a = $3 AND b = $4);",
        )
        .unwrap();
        let plan: Vec<Line> = diesel::sql_query("EXPLAIN (COSTS OFF) EXECUTE lookup (1, 'x', 2, 'y')")
            .load(conn)
            .unwrap();
        conn.batch_execute("DEALLOCATE lookup; RESET plan_cache_mode; DROP TABLE young;")
            .unwrap();
        plan.into_iter().map(|l| l.text).collect::<Vec<_>>().join("\n")
    }

    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let db = app.state.db.clone();
    let (writer, pooled) = actix_web::web::block(move || {
        let writer = generic_plan(&mut db.dedicated().unwrap());
        let pooled = generic_plan(&mut db.get().unwrap());
        (writer, pooled)
    })
    .await
    .unwrap();
    assert!(!writer.contains("Seq Scan"), "the writer's plan scans:\n{writer}");
    assert!(writer.contains("young_pkey"), "{writer}");
    assert!(pooled.contains("Seq Scan"), "{pooled}");
}

/// Commits wait for the disk on every connection the service opens, even where the database's own default
/// says they need not: answers promise that what they acknowledge survives a crash.
#[actix_web::test]
async fn postgres_commits_are_durable_whatever_the_database_default() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        synchronous_commit: String,
    }
    fn setting<C>(conn: &mut C) -> String
    where
        C: Connection<Backend = diesel::pg::Pg> + diesel::connection::LoadConnection,
    {
        diesel::sql_query("SHOW synchronous_commit")
            .get_result::<Setting>(conn)
            .unwrap()
            .synchronous_commit
    }

    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let url = app.settings.database.url.clone();
    let db = app.state.db.clone();
    let (plain, writer, pooled) = actix_web::web::block(move || {
        let mut plain = PgConnection::establish(&url).unwrap();
        plain
            .batch_execute(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', \
                 current_database()); END $$",
            )
            .unwrap();
        // A new session takes the database's default; the service's own take theirs.
        let plain = setting(&mut PgConnection::establish(&url).unwrap());
        let writer = match db.dedicated().unwrap() {
            tanhui::db::AnyConnection::Postgresql(mut conn) => setting(&mut conn),
            _ => unreachable!("a PostgreSQL app"),
        };
        // The pool's connections were opened before the change: a new one, made as the pool makes them.
        let options = tanhui::db::ConnectOptions {
            url,
            busy_timeout_ms: 1000,
        };
        let pooled = match tanhui::db::Manager::new(options).unwrap().connect().unwrap() {
            tanhui::db::AnyConnection::Postgresql(mut conn) => setting(&mut conn),
            _ => unreachable!("a PostgreSQL app"),
        };
        (plain, writer, pooled)
    })
    .await
    .unwrap();
    assert_eq!(plain, "off", "the database's default was not changed");
    assert_eq!((writer.as_str(), pooled.as_str()), ("on", "on"));
}

/// Redis reached through a proxy the test can cut: while it is cut `/readyz` answers 503 problem+json
/// saying what is down, and 200 again once it is back.
#[actix_web::test]
async fn readiness_reports_a_lost_redis_as_a_problem() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let Some((_, redis_url)) = crate::helpers::postgres_env() else {
        return;
    };
    let target = redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("redis://{}", listener.local_addr().unwrap());
    let cut = Arc::new(AtomicBool::new(false));
    let pipes = Arc::new(Mutex::new(Vec::<tokio::task::JoinHandle<()>>::new()));
    let (accepting, open) = (cut.clone(), pipes.clone());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            if accepting.load(Ordering::SeqCst) {
                continue; // dropped: the connection closes at once
            }
            let target = target.clone();
            open.lock().unwrap().push(tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            }));
        }
    });
    let Some(app) =
        crate::helpers::spawn_with(crate::helpers::Backend::Postgres, |s| s.redis.url = Some(proxy)).await
    else {
        return;
    };
    let ready = |want: u16| {
        let app = &app;
        async move {
            for _ in 0..50 {
                let r = app.get("/readyz", None).await;
                if r.status.as_u16() == want {
                    return r;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("/readyz never answered {want}");
        }
    };
    ready(200).await;
    cut.store(true, Ordering::SeqCst);
    for pipe in pipes.lock().unwrap().drain(..) {
        pipe.abort();
    }
    let r = ready(503).await;
    r.assert_problem(503, "not_ready");
    assert_eq!(
        (&r.body["database"], &r.body["redis"]),
        (&json!("ok"), &json!("down"))
    );
    cut.store(false, Ordering::SeqCst);
    assert_eq!(ready(200).await.body["redis"], "ok");
}

/// PostgreSQL cannot store U+0000; every backend refuses it with the same 4xx before anything is written.
async fn nul_characters_are_refused_everywhere(app: TestApp) {
    let r = app
        .post(
            "/api/v1/auth/login",
            &json!({"phone": "\u{0}", "password": "x"}),
            None,
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "phone");
    app.get("/api/v1/regions/%00", None)
        .await
        .assert_problem(400, "invalid_path");
    app.get("/api/v1/methodologies?activity_type=a%00", None)
        .await
        .assert_problem(400, "invalid_path");

    let token = app.new_user_token().await;
    let at = chrono::Utc::now().to_rfc3339();
    let walk = |id: &str| {
        json!({"client_event_id": id, "activity_type": "walking", "occurred_at": at,
               "evidence": "trace", "data": {"distance_m": 500}})
    };
    let r = app.post_activity(&token, &walk("n\u{0}")).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "client_event_id");
    // In a batch the item with the NUL alone is refused; its neighbours are stored.
    let batch = json!({"events": [walk("n-1"), walk("n-2\u{0}"), walk("n-3")]});
    let r = app.post("/api/v1/activities/batch", &batch, Some(&token)).await;
    let results = r.assert_status(200)["results"].as_array().unwrap().clone();
    assert_eq!(results[1]["error"]["errors"][0]["field"], "client_event_id");
    assert!(results[0]["activity_id"].is_string() && results[2]["activity_id"].is_string());
    let listed = app.get("/api/v1/activities", Some(&token)).await;
    assert_eq!(listed.assert_status(200)["items"].as_array().unwrap().len(), 2);
    let transfer = app
        .client
        .post(app.url("/api/v1/transfers"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "nul-memo")
        .json(&json!({"to_account_id": "1", "points": 1, "memo": "\u{0}"}));
    let r = app.send(transfer).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "memo");
}
