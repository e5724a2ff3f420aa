//! Hand-written statements that stay prepared on both backends.
//!
//! Diesel prepares a statement once and reuses it only when the query's type says what SQL it makes. It
//! never does that for `sql_query`, nor for any UPDATE or upsert built with its DSL (their SET lists may
//! skip `None` fields), so on the hot paths those statements were parsed and planned again on every call.
//! A [`Prepared`] statement's SQL is fixed by its marker type, so diesel caches it by that type; its
//! parameters are bound with `push_bind_param`, which writes `$n` for PostgreSQL and `?` for SQLite. The
//! SQL itself must be what both backends accept.

use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, SingleValue, Text, Timestamp};

use super::AnyConnection;

type Multi = <AnyConnection as Connection>::Backend;

/// A statement's text.
pub trait Sql: 'static {
    /// The SQL, with `?` for each parameter (written as each backend wants it); no other `?` may appear.
    const SQL: &'static str;
    /// What one row of its `RETURNING` holds (any type for a statement that returns nothing).
    type Returns: SingleValue;
}

/// A parameter value. A given position of a given statement always takes the same variant (its type is
/// part of the prepared statement).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    BigInt(i64),
    Integer(i32),
    Bool(bool),
    Text(&'a str),
    NullableBigInt(Option<i64>),
    Timestamp(NaiveDateTime),
}

/// One execution of the statement `S` with its parameters.
pub struct Prepared<'a, S: Sql> {
    values: Vec<Value<'a>>,
    statement: PhantomData<S>,
}

impl<'a, S: Sql> Prepared<'a, S> {
    pub fn new(values: impl Into<Vec<Value<'a>>>) -> Prepared<'a, S> {
        let values = values.into();
        debug_assert_eq!(
            values.len(),
            S::SQL.matches('?').count(),
            "parameters of {}",
            S::SQL
        );
        Prepared {
            values,
            statement: PhantomData,
        }
    }
}

impl<S: Sql> QueryId for Prepared<'_, S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Sql> Query for Prepared<'_, S> {
    type SqlType = S::Returns;
}

impl<S: Sql> RunQueryDsl<AnyConnection> for Prepared<'_, S> {}

impl<S: Sql> QueryFragment<Multi> for Prepared<'_, S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Multi>) -> QueryResult<()> {
        let mut parts = S::SQL.split('?');
        if let Some(first) = parts.next() {
            out.push_sql(first);
        }
        for (value, part) in self.values.iter().zip(parts) {
            match value {
                Value::BigInt(v) => out.push_bind_param::<BigInt, _>(v)?,
                Value::Integer(v) => out.push_bind_param::<Integer, _>(v)?,
                Value::Bool(v) => out.push_bind_param::<Bool, _>(v)?,
                Value::Text(v) => out.push_bind_param::<Text, _>(v)?,
                Value::NullableBigInt(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                Value::Timestamp(v) => out.push_bind_param::<Timestamp, _>(v)?,
            }
            out.push_sql(part);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::SqliteConnection;

    use super::*;

    struct AddTo;
    impl Sql for AddTo {
        const SQL: &'static str = "UPDATE t SET n = n + ? WHERE id = ? RETURNING n";
        type Returns = BigInt;
    }

    #[test]
    fn binds_between_parts_and_reuses_the_statement() {
        let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        conn.batch_execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO t VALUES (1, 0), (2, 0);",
        )
        .unwrap();
        let add = |conn: &mut AnyConnection, id, n| {
            Prepared::<AddTo>::new([Value::BigInt(n), Value::BigInt(id)])
                .get_result::<i64>(conn)
                .unwrap()
        };
        assert_eq!(add(&mut conn, 1, 5), 5);
        assert_eq!(add(&mut conn, 1, 7), 12);
        assert_eq!(add(&mut conn, 2, 1), 1);
    }
}
