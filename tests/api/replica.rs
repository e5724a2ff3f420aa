//! Anonymous reads of public data go to a PostgreSQL streaming replica (`TANHUI_TEST_REPLICA_URL`, which
//! `.ci/run` starts), while an instance reads its own writes at once and a signed-in caller reads the
//! primary.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Bool;
use serde_json::json;

use crate::helpers::{replica_env, second_instance, spawn, Backend};

#[derive(QueryableByName)]
struct Recovery {
    #[diesel(sql_type = Bool)]
    standby: bool,
}

fn in_recovery(conn: &mut tanhui::db::AnyConnection) -> Result<bool, tanhui::error::ApiError> {
    Ok(diesel::sql_query("SELECT pg_is_in_recovery() AS standby")
        .get_result::<Recovery>(conn)?
        .standby)
}

#[actix_web::test]
async fn anonymous_reads_go_to_the_replica_and_writers_read_their_writes() {
    if replica_env().is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but TANHUI_TEST_REPLICA_URL is not set"
        );
        eprintln!("skipping: TANHUI_TEST_REPLICA_URL not set");
        return;
    }
    let Some(app) = spawn(Backend::Postgres).await else {
        return;
    };
    // An instance that writes nothing: its reads may use any replica position.
    let reader = second_instance(&app).await;
    let mut replicated = false;
    for _ in 0..100 {
        if reader.state.db.reads_from_replica().await {
            replicated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(replicated, "the replica never served the test database");
    assert!(
        reader.state.db.read(in_recovery).await.unwrap(),
        "read work went to the primary"
    );
    assert!(
        !reader.state.db.run(in_recovery).await.unwrap(),
        "other work went to the replica"
    );

    // A write through `app`, read back at once anonymously from the same instance (the replica serves
    // only once it has replayed it) and by the signed-in writer from the other instance (the primary).
    let maker = app.admin_token().await;
    let draft = json!({
        "activity_type": "transit.bus", "region_code": "440300",
        "effective_from": "2020-01-01T00:00:00+08:00",
        "parameters": {"k": {"value": "150", "unit": "g/ride", "source": "test"}},
        "formula": "count * k", "daily_cap_g": 1000, "citation": "replica test"
    });
    for _ in 0..20 {
        let id = app.draft(&maker, &draft).await;
        let path = format!("/api/v1/methodologies/{id}");
        app.get(&path, None).await.assert_status(200);
        reader.get(&path, Some(&maker)).await.assert_status(200);
    }
    // The writer's instance reads from the replica again once it caught up.
    let mut caught_up = false;
    for _ in 0..100 {
        if app.state.db.reads_from_replica().await {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the replica did not catch up with the writes");
}
