//! Multi-row statements that stay prepared on both backends.
//!
//! Diesel's batch insert runs one statement per row on SQLite and does not compile for the two-backend
//! connection, and `sql_query` is never kept prepared. A [`Dynamic`] statement is SQL text with `?`
//! parameters, bound with `push_bind_param` (which writes `$n` for PostgreSQL and `?` for SQLite); diesel
//! caches it by its text. Callers build a few shapes (at most 32 rows per statement), so each shape is
//! parsed once per connection. The SQL itself must be what both backends accept.

use std::cell::OnceCell;
use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Integer, Nullable, Text, Timestamp};
use diesel::sqlite::Sqlite;

use super::AnyConnection;

type Multi = <AnyConnection as Connection>::Backend;

/// A parameter value. A given position of a given statement always takes the same variant (its type is
/// part of the prepared statement).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    BigInt(i64),
    Integer(i32),
    Text(&'a str),
    NullableBigInt(Option<i64>),
    NullableText(Option<&'a str>),
    Timestamp(NaiveDateTime),
    NullableTimestamp(Option<NaiveDateTime>),
}

/// A statement whose SQL is built at run time, with `?` parameters, returning rows of `ST`. Diesel keeps
/// it prepared by its text (it has no static id, and unlike `sql_query` it does not opt out of the
/// cache), so a caller that builds a few shapes repeatedly (a fixed number of rows per chunk) parses
/// each shape once per connection.
pub struct Dynamic<'a, ST> {
    sql: String,
    /// Where each `?` is in `sql`, one per value.
    marks: Vec<usize>,
    values: Vec<Value<'a>>,
    /// How PostgreSQL plans it; kept prepared unless a caller says otherwise.
    planning: Planning,
    /// The timestamps among `values` as SQLite text, made on the first walk (diesel walks a statement
    /// more than once per execution) and only on SQLite.
    sqlite_times: OnceCell<Vec<String>>,
    returns: PhantomData<ST>,
}

impl<'a, ST> Dynamic<'a, ST> {
    pub fn new(sql: String, values: Vec<Value<'a>>) -> Dynamic<'a, ST> {
        let marks: Vec<usize> = sql.match_indices('?').map(|(at, _)| at).collect();
        debug_assert_eq!(values.len(), marks.len(), "parameters of {sql}");
        Dynamic {
            sql,
            marks,
            values,
            planning: Planning::Cached,
            sqlite_times: OnceCell::new(),
            returns: PhantomData,
        }
    }

    fn sqlite_times(&self) -> &[String] {
        self.sqlite_times.get_or_init(|| {
            self.values
                .iter()
                .filter_map(|value| match value {
                    Value::Timestamp(t) | Value::NullableTimestamp(Some(t)) => Some(sqlite_timestamp(*t)),
                    _ => None,
                })
                .collect()
        })
    }
}

/// `t` as diesel writes a SQLite timestamp (`%F %T%.f`: fractional digits only as many as needed, in
/// threes), without chrono's formatter, which parses its format string for every value: an ingest
/// writer's group binds thousands of timestamps, and that formatting was a twentieth of its time.
fn sqlite_timestamp(t: NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    let nano = t.nanosecond();
    // Years of other than four digits and leap seconds, which no request can produce, the long way.
    if !(1000..=9999).contains(&t.year()) || nano >= 1_000_000_000 {
        return t.format("%F %T%.f").to_string();
    }
    let mut text = String::with_capacity(29);
    fn digits(n: u32, width: u32, text: &mut String) {
        for place in (0..width).rev() {
            text.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
        }
    }
    digits(t.year() as u32, 4, &mut text);
    for (separator, n) in [
        ('-', t.month()),
        ('-', t.day()),
        (' ', t.hour()),
        (':', t.minute()),
        (':', t.second()),
    ] {
        text.push(separator);
        digits(n, 2, &mut text);
    }
    if nano != 0 {
        text.push('.');
        match (nano % 1_000_000, nano % 1_000) {
            (0, _) => digits(nano / 1_000_000, 3, &mut text),
            (_, 0) => digits(nano / 1_000, 6, &mut text),
            _ => digits(nano, 9, &mut text),
        }
    }
    text
}

impl<ST: 'static> QueryId for Dynamic<'_, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST: 'static> Query for Dynamic<'_, ST> {
    type SqlType = ST;
}

impl<ST: 'static> RunQueryDsl<AnyConnection> for Dynamic<'_, ST> {}
impl<ST: 'static> RunQueryDsl<SqliteConnection> for Dynamic<'_, ST> {}
impl<ST: 'static> RunQueryDsl<PgConnection> for Dynamic<'_, ST> {}

impl<ST: 'static> Dynamic<'_, ST> {
    /// Runs the statement on the backend's own connection. Through the two-backend connection every bind
    /// value is first collected by its layer and then again by the backend's: with multi-row inserts of
    /// hundreds of values that double handling was half the binding time of the ingest writer.
    pub fn execute(self, conn: &mut AnyConnection) -> QueryResult<usize> {
        match conn {
            AnyConnection::Sqlite(conn) => RunQueryDsl::execute(self, conn),
            AnyConnection::Postgresql(conn) => RunQueryDsl::execute(self, conn),
        }
    }
}

/// Which backend a statement is about to run on.
pub trait OnPostgres: Backend {
    fn is_postgres(&self) -> bool;
}

impl OnPostgres for Pg {
    fn is_postgres(&self) -> bool {
        true
    }
}

impl OnPostgres for Sqlite {
    fn is_postgres(&self) -> bool {
        false
    }
}

impl OnPostgres for Multi {
    fn is_postgres(&self) -> bool {
        matches!(self, Multi::Postgresql(_))
    }
}

/// For each backend alone as well as for the two-backend connection: see [`Dynamic::execute`].
impl<ST: 'static, DB> QueryFragment<DB> for Dynamic<'_, ST>
where
    DB: OnPostgres + HasSqlType<BigInt> + HasSqlType<Integer> + HasSqlType<Text> + HasSqlType<Timestamp>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    str: ToSql<Text, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if self.planning == Planning::EachTime && out.backend().is_postgres() {
            out.unsafe_to_cache_prepared();
        }
        // Each `?` becomes the next value's bind parameter. Diesel walks a statement several times per
        // execution (its cache key, its binds), so the `?`s are found once, in `new`.
        // On SQLite a timestamp is text: bound as the text made once for this statement.
        const NO_TIME: Option<&str> = None;
        let on_sqlite = !out.backend().is_postgres();
        let mut sqlite_times = if on_sqlite { self.sqlite_times() } else { &[] }.iter();
        let mut start = 0;
        for (value, &mark) in self.values.iter().zip(&self.marks) {
            out.push_sql(&self.sql[start..mark]);
            match value {
                Value::Timestamp(_) | Value::NullableTimestamp(Some(_)) if on_sqlite => {
                    let text = sqlite_times.next().expect("one text per timestamp");
                    out.push_bind_param::<Text, str>(text)
                }
                Value::NullableTimestamp(None) if on_sqlite => {
                    out.push_bind_param::<Nullable<Text>, _>(&NO_TIME)
                }
                Value::BigInt(v) => out.push_bind_param::<BigInt, _>(v),
                Value::Integer(v) => out.push_bind_param::<Integer, _>(v),
                Value::Text(v) => out.push_bind_param::<Text, _>(v),
                Value::NullableBigInt(v) => out.push_bind_param::<Nullable<BigInt>, _>(v),
                Value::NullableText(v) => out.push_bind_param::<Nullable<Text>, _>(v),
                Value::Timestamp(v) => out.push_bind_param::<Timestamp, _>(v),
                Value::NullableTimestamp(v) => out.push_bind_param::<Nullable<Timestamp>, _>(v),
            }?;
            start = mark + 1;
        }
        out.push_sql(&self.sql[start..]);
        Ok(())
    }
}

/// Rows per multi-row statement: few enough shapes to keep prepared, many rows per statement.
pub const ROWS_PER_STATEMENT: usize = 32;

/// Inserts `rows` (values in `columns` order) with multi-row statements of at most 32 rows each, every
/// shape kept prepared. (Diesel's own batch insert runs one statement per row on SQLite, and none at all
/// on the two-backend connection.)
pub fn insert_rows(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value<'_>>],
) -> QueryResult<usize> {
    write_rows(conn, table, columns, rows, "")
}

/// [`insert_rows`] with a clause after the values (`ON CONFLICT … DO UPDATE …`).
pub fn write_rows(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value<'_>>],
    then: &str,
) -> QueryResult<usize> {
    let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
    let mut written = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}{then}",
            columns.join(", "),
            vec![tuple.as_str(); chunk.len()].join(", ")
        );
        let values: Vec<Value<'_>> = chunk.iter().flatten().copied().collect();
        written += Dynamic::<BigInt>::new(sql, values).execute(conn)?;
    }
    Ok(written)
}

/// How PostgreSQL plans the lookups of [`matching`] and [`in_list`] (SQLite keeps every shape prepared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planning {
    /// Planned for their values on every execution. A prepared statement switches to a generic plan after
    /// five executions when its estimate is no worse, and on a young table that is a sequential scan, kept
    /// while the table grows (the transfer benchmark ran at less than half its rate whenever that
    /// happened). For pooled connections.
    EachTime,
    /// Kept prepared, each shape planned a few times and then generically. Only for a writer's own
    /// connection, which plans without sequential scans (`Db::dedicated`), so that no generic plan can be
    /// one: planning a lookup of 20 keys afresh took 0.2 ms, three times per group commit.
    Cached,
}

/// Statements selecting the rows that match any of `keys` exactly (each key a list of values for
/// `key_columns`): ORed equality terms, each an index lookup, at most 32 keys per statement. The caller
/// loads each.
pub fn matching<'v, ST>(
    select: &str,
    key_columns: &[&str],
    keys: &[Vec<Value<'v>>],
    planning: Planning,
) -> Vec<Dynamic<'v, ST>> {
    let term = format!(
        "({})",
        key_columns
            .iter()
            .map(|c| format!("{c} = ?"))
            .collect::<Vec<_>>()
            .join(" AND ")
    );
    keys.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let sql = format!("{select} WHERE {}", vec![term.as_str(); chunk.len()].join(" OR "));
            let mut statement = Dynamic::new(sql, chunk.iter().flatten().copied().collect());
            statement.planning = planning;
            statement
        })
        .collect()
}

/// Statements `sql` whose `IN ({ids})` takes at most 32 of `ids` each, after the `params` every one of them
/// starts with. Diesel's own `eq_any` writes one `?` per value on SQLite and so is never kept prepared;
/// these are, one shape per list length.
pub fn in_list<'v, ST>(
    sql: &str,
    params: &[Value<'v>],
    ids: &[i64],
    planning: Planning,
) -> Vec<Dynamic<'v, ST>> {
    ids.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let sql = sql.replace("{ids}", &vec!["?"; chunk.len()].join(", "));
            let values = params
                .iter()
                .copied()
                .chain(chunk.iter().map(|&id| Value::BigInt(id)))
                .collect();
            let mut statement = Dynamic::new(sql, values);
            statement.planning = planning;
            statement
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::SqliteConnection;

    use super::*;

    #[test]
    fn binds_between_parts_and_reuses_the_statement() {
        let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        conn.batch_execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO t VALUES (1, 0), (2, 0);",
        )
        .unwrap();
        let add = |conn: &mut AnyConnection, id, n| {
            let sql = "UPDATE t SET n = n + ? WHERE id = ? RETURNING n".to_string();
            Dynamic::<BigInt>::new(sql, vec![Value::BigInt(n), Value::BigInt(id)])
                .get_result::<i64>(conn)
                .unwrap()
        };
        assert_eq!(add(&mut conn, 1, 5), 5);
        assert_eq!(add(&mut conn, 1, 7), 12);
        assert_eq!(add(&mut conn, 2, 1), 1);
    }

    mod timestamps {
        use proptest::prelude::*;

        use super::super::sqlite_timestamp;

        proptest! {
            #[test]
            fn read_as_diesel_writes_them(
                seconds in 0i64..8_000_000_000,
                nanos in prop_oneof![
                    Just(0u32),
                    (0u32..1_000).prop_map(|ms| ms * 1_000_000),
                    (0u32..1_000_000).prop_map(|us| us * 1_000),
                    0u32..1_000_000_000,
                ],
            ) {
                // From 1906 to 2160: years of four digits.
                let t = chrono::DateTime::from_timestamp(seconds - 2_000_000_000, nanos).unwrap().naive_utc();
                prop_assert_eq!(sqlite_timestamp(t), t.format("%F %T%.f").to_string());
            }
        }
    }

    #[test]
    fn timestamps_bind_as_sqlite_text_and_read_back() {
        let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        conn.batch_execute("CREATE TABLE t (at TIMESTAMP NOT NULL, until TIMESTAMP);")
            .unwrap();
        let at = chrono::DateTime::from_timestamp(1_796_184_424, 485_038_000)
            .unwrap()
            .naive_utc();
        let values = [
            Value::Timestamp(at),
            Value::NullableTimestamp(None),
            Value::Timestamp(at),
            Value::NullableTimestamp(Some(at)),
        ];
        insert_rows(
            &mut conn,
            "t",
            &["at", "until"],
            &[values[..2].to_vec(), values[2..].to_vec()],
        )
        .unwrap();
        let read: Vec<(NaiveDateTime, Option<NaiveDateTime>)> =
            diesel::sql_query("SELECT at, until FROM t ORDER BY until IS NULL DESC")
                .load::<Stamps>(&mut conn)
                .unwrap()
                .into_iter()
                .map(|r| (r.at, r.until))
                .collect();
        assert_eq!(read, vec![(at, None), (at, Some(at))]);
        let text: Vec<Texts> = diesel::sql_query("SELECT at FROM t").load(&mut conn).unwrap();
        assert_eq!(text[0].at, "2026-12-02 04:07:04.485038");
    }

    #[derive(QueryableByName)]
    struct Stamps {
        #[diesel(sql_type = Timestamp)]
        at: NaiveDateTime,
        #[diesel(sql_type = Nullable<Timestamp>)]
        until: Option<NaiveDateTime>,
    }

    #[derive(QueryableByName)]
    struct Texts {
        #[diesel(sql_type = Text)]
        at: String,
    }

    #[test]
    fn rows_go_in_and_are_found_in_chunks() {
        let mut conn = AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        conn.batch_execute("CREATE TABLE k (a BIGINT, b TEXT, n BIGINT, PRIMARY KEY (a, b));")
            .unwrap();
        let names: Vec<String> = (0..70).map(|i| format!("k{i}")).collect();
        let rows: Vec<Vec<Value<'_>>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                vec![
                    Value::BigInt(i as i64 % 3),
                    Value::Text(name),
                    Value::BigInt(i as i64),
                ]
            })
            .collect();
        assert_eq!(insert_rows(&mut conn, "k", &["a", "b", "n"], &rows).unwrap(), 70);
        // Every third key exists; the others name the wrong `a`.
        let keys: Vec<Vec<Value<'_>>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| vec![Value::BigInt(if i % 3 == 0 { 0 } else { 9 }), Value::Text(name)])
            .collect();
        let mut found: Vec<i64> = Vec::new();
        for query in matching::<BigInt>("SELECT n FROM k", &["a", "b"], &keys, Planning::Cached) {
            found.extend(query.load::<i64>(&mut conn).unwrap());
        }
        found.sort_unstable();
        assert_eq!(found, (0..70).step_by(3).collect::<Vec<i64>>());
    }
}
