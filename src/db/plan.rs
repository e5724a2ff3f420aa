//! Query plans of list queries, so that a list whose index went missing fails a test rather than
//! slowing down in production as history grows.
//!
//! [`ListQuery`] is what a store function that pages a list returns: the very query the endpoint
//! loads, which [`explain`] can also hand to the backend's planner (no copy of its text). The plan comes
//! back one line per node: SQLite's `EXPLAIN QUERY PLAN` details, PostgreSQL's `EXPLAIN` text.

use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::methods::LoadQuery;
use diesel::sql_types::{Text, Untyped};

use super::AnyConnection;

type Multi = <AnyConnection as Connection>::Backend;

/// A query that loads rows of `T` on either backend and can be explained.
pub trait ListQuery<T>:
    RunQueryDsl<AnyConnection> + LoadQuery<'static, AnyConnection, T> + QueryFragment<Multi> + QueryId + Send
{
}

impl<T, Q> ListQuery<T> for Q where
    Q: RunQueryDsl<AnyConnection>
        + LoadQuery<'static, AnyConnection, T>
        + QueryFragment<Multi>
        + QueryId
        + Send
{
}

/// `EXPLAIN` (or SQLite's `EXPLAIN QUERY PLAN`) in front of a query, with the query's own parameters.
struct Explain<Q> {
    prefix: &'static str,
    query: Q,
}

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = Untyped;
}

impl<Q> RunQueryDsl<AnyConnection> for Explain<Q> {}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql(self.prefix);
        self.query.walk_ast(out.reborrow())
    }
}

#[derive(QueryableByName)]
struct SqliteStep {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PostgresLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan the backend chooses for `query`, one line per step. On PostgreSQL sequential and bitmap
/// scans are disabled for the statement: a test database holds a few rows, which PostgreSQL would
/// rather read whole; what the test asks is whether an index serves the query's filter and order.
pub fn explain<T, Q: ListQuery<T>>(conn: &mut AnyConnection, query: Q) -> QueryResult<Vec<String>> {
    match conn {
        AnyConnection::Sqlite(_) => {
            let explained = Explain {
                prefix: "EXPLAIN QUERY PLAN ",
                query,
            };
            let steps: Vec<SqliteStep> = explained.load(conn)?;
            Ok(steps.into_iter().map(|s| s.detail).collect())
        }
        AnyConnection::Postgresql(_) => super::transaction(conn, super::Tx::Snapshot, |conn| {
            conn.batch_execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")?;
            let explained = Explain {
                prefix: "EXPLAIN ",
                query,
            };
            let lines: Vec<PostgresLine> = explained.load(conn)?;
            Ok(lines.into_iter().map(|l| l.line).collect())
        }),
    }
}
