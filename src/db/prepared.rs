//! Multi-row statements that stay prepared on both backends.
//!
//! Diesel's batch insert runs one statement per row on SQLite and does not compile for the two-backend
//! connection, and `sql_query` is never kept prepared. A [`Dynamic`] statement is built at run time from
//! SQL text and bind parameters pushed in order: each parameter is placed where it was pushed (diesel writes
//! `$n` for PostgreSQL and `?` for SQLite), never found by reading the text, so a `?` inside a literal is
//! only text. Diesel caches the statement by its text. Callers build a few shapes (at most
//! [`ROWS_PER_STATEMENT`] rows per statement), so each shape is parsed once per connection. The SQL itself
//! must be what both backends accept. Inserts and keyed lookups take their column names and values from
//! one declaration per row type ([`Columns`], made by [`columns!`](crate::db::columns::columns)).

use std::cell::OnceCell;
use std::marker::PhantomData;

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::LoadQuery;
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Integer, Nullable, Text, Timestamp};
use diesel::sqlite::Sqlite;

use super::columns::Columns;
pub use super::columns::Value;
use super::AnyConnection;

type Multi = <AnyConnection as Connection>::Backend;

/// A statement built at run time from text and parameters (see the module notes), returning rows of
/// `ST`. Diesel keeps it prepared by its text (it has no static id, and unlike `sql_query` it does not
/// opt out of the cache), so a caller that builds a few shapes repeatedly (a fixed number of rows per
/// chunk) parses each shape once per connection.
pub struct Dynamic<'a, ST> {
    /// The SQL text, without the parameters.
    sql: String,
    /// Each parameter's value with where it goes in `sql` (the text's length when it was pushed), in order.
    binds: Vec<(usize, Bind<'a>)>,
    /// How PostgreSQL plans it; kept prepared unless a caller says otherwise.
    planning: Planning,
    /// The timestamps among the parameters as SQLite text, made on the first walk (diesel walks a
    /// statement more than once per execution) and only on SQLite.
    sqlite_times: OnceCell<Vec<String>>,
    returns: PhantomData<ST>,
}

impl<'a, ST> Dynamic<'a, ST> {
    /// A statement that starts with the text `sql`.
    pub fn new(sql: impl Into<String>) -> Dynamic<'a, ST> {
        Dynamic {
            sql: sql.into(),
            binds: Vec::new(),
            planning: Planning::Cached,
            sqlite_times: OnceCell::new(),
            returns: PhantomData,
        }
    }

    /// Appends text (only text: a `?` in it is no parameter).
    pub fn sql(mut self, sql: &str) -> Dynamic<'a, ST> {
        self.push_sql(sql);
        self
    }

    /// Appends a parameter bound to `value`.
    pub fn bind(mut self, value: Value<'a>) -> Dynamic<'a, ST> {
        self.push_bind(value);
        self
    }

    pub fn push_sql(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    pub fn push_bind(&mut self, value: Value<'a>) {
        self.binds.push((self.sql.len(), Bind::One(value)));
    }

    /// Appends a parameter bound to a whole column of values, as one PostgreSQL array (`$n::type[]`).
    /// Only PostgreSQL runs such a statement.
    pub fn push_array(&mut self, array: Array<'a>) {
        let cast = array.cast();
        self.binds.push((self.sql.len(), Bind::Array(array)));
        self.push_sql(cast);
    }

    /// Appends `UNNEST($1::type[], $2::type[], …)`: the rows whose columns are `columns`.
    pub fn push_unnest(&mut self, columns: Vec<Array<'a>>) {
        self.push_sql("UNNEST(");
        for (i, column) in columns.into_iter().enumerate() {
            if i > 0 {
                self.push_sql(", ");
            }
            self.push_array(column);
        }
        self.push_sql(")");
    }

    /// Appends `(v, v, …)`, a parameter for each of `values`.
    pub fn push_tuple(&mut self, values: impl IntoIterator<Item = Value<'a>>) {
        self.push_sql("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push_sql(", ");
            }
            self.push_bind(value);
        }
        self.push_sql(")");
    }

    /// Appends `(v, …), (v, …), …`, a tuple for each of `rows` (the rows of a `VALUES` list).
    pub fn push_tuples<I>(&mut self, rows: impl IntoIterator<Item = I>)
    where
        I: IntoIterator<Item = Value<'a>>,
    {
        for (i, row) in rows.into_iter().enumerate() {
            if i > 0 {
                self.push_sql(", ");
            }
            self.push_tuple(row);
        }
    }

    pub fn planned(mut self, planning: Planning) -> Dynamic<'a, ST> {
        self.planning = planning;
        self
    }

    fn sqlite_times(&self) -> &[String] {
        self.sqlite_times.get_or_init(|| {
            self.binds
                .iter()
                .filter_map(|(_, bind)| match bind {
                    Bind::One(Value::Timestamp(t) | Value::NullableTimestamp(Some(t))) => {
                        Some(sqlite_timestamp(*t))
                    }
                    _ => None,
                })
                .collect()
        })
    }
}

/// A copy to append to (the SQLite texts of its timestamps are made again, for what it will hold).
impl<ST> Clone for Dynamic<'_, ST> {
    fn clone(&self) -> Self {
        Dynamic {
            sql: self.sql.clone(),
            binds: self.binds.clone(),
            planning: self.planning,
            sqlite_times: OnceCell::new(),
            returns: PhantomData,
        }
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

    /// Loads the statement's rows on the backend's own connection (see [`Dynamic::execute`]); the only
    /// way to run a statement with array parameters, which the two-backend connection cannot bind.
    pub fn load_rows<'q, U>(self, conn: &mut AnyConnection) -> QueryResult<Vec<U>>
    where
        Self: LoadQuery<'q, SqliteConnection, U> + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            AnyConnection::Sqlite(conn) => RunQueryDsl::load(self, conn),
            AnyConnection::Postgresql(conn) => RunQueryDsl::load(self, conn),
        }
    }
}

/// A parameter: one value, or a column of values bound as one PostgreSQL array.
#[derive(Debug, Clone)]
enum Bind<'a> {
    One(Value<'a>),
    Array(Array<'a>),
}

/// A column of values, bound as one PostgreSQL array: a set-based statement (`UNNEST`) takes any number of
/// rows in one shape, kept prepared, where a `VALUES` list has a shape per row count.
#[derive(Debug, Clone)]
pub enum Array<'a> {
    BigInt(Vec<i64>),
    Integer(Vec<i32>),
    Text(Vec<&'a str>),
    NullableBigInt(Vec<Option<i64>>),
    NullableText(Vec<Option<&'a str>>),
    Timestamp(Vec<NaiveDateTime>),
    NullableTimestamp(Vec<Option<NaiveDateTime>>),
}

impl<'a> Array<'a> {
    /// An empty column of `value`'s type, with room for `capacity` values.
    fn like(value: &Value<'_>, capacity: usize) -> Array<'a> {
        match value {
            Value::BigInt(_) => Array::BigInt(Vec::with_capacity(capacity)),
            Value::Integer(_) => Array::Integer(Vec::with_capacity(capacity)),
            Value::Text(_) => Array::Text(Vec::with_capacity(capacity)),
            Value::NullableBigInt(_) => Array::NullableBigInt(Vec::with_capacity(capacity)),
            Value::NullableText(_) => Array::NullableText(Vec::with_capacity(capacity)),
            Value::Timestamp(_) => Array::Timestamp(Vec::with_capacity(capacity)),
            Value::NullableTimestamp(_) => Array::NullableTimestamp(Vec::with_capacity(capacity)),
        }
    }

    /// Appends `value`, which must be of the column's type (a position always binds one type).
    fn push(&mut self, value: Value<'a>) {
        match (self, value) {
            (Array::BigInt(a), Value::BigInt(v)) => a.push(v),
            (Array::Integer(a), Value::Integer(v)) => a.push(v),
            (Array::Text(a), Value::Text(v)) => a.push(v),
            (Array::NullableBigInt(a), Value::NullableBigInt(v)) => a.push(v),
            (Array::NullableText(a), Value::NullableText(v)) => a.push(v),
            (Array::Timestamp(a), Value::Timestamp(v)) => a.push(v),
            (Array::NullableTimestamp(a), Value::NullableTimestamp(v)) => a.push(v),
            (array, value) => unreachable!("a {value:?} in a column of {}", array.cast()),
        }
    }

    /// The cast that names the array's type in the statement's text (`UNNEST` of untyped parameters
    /// cannot be planned).
    fn cast(&self) -> &'static str {
        match self {
            Array::BigInt(_) | Array::NullableBigInt(_) => "::bigint[]",
            Array::Integer(_) => "::integer[]",
            Array::Text(_) | Array::NullableText(_) => "::text[]",
            Array::Timestamp(_) | Array::NullableTimestamp(_) => "::timestamp[]",
        }
    }

    /// `rows` by column: one array per declared column of `R`.
    pub fn columns<T, R: Columns<T>>(rows: &'a [R]) -> Vec<Array<'a>> {
        let mut columns: Vec<Array<'a>> = Vec::with_capacity(R::NAMES.len());
        for (i, row) in rows.iter().enumerate() {
            for (j, value) in row.values().enumerate() {
                if i == 0 {
                    columns.push(Array::like(&value, rows.len()));
                }
                columns[j].push(value);
            }
        }
        columns
    }
}

/// Binds an array parameter where the backend has arrays (PostgreSQL); elsewhere it is an error.
pub trait BindArrays: OnPostgres {
    fn push_array<'b>(out: &mut AstPass<'_, 'b, Self>, array: &'b Array<'_>) -> QueryResult<()>;
}

fn no_arrays() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        "array parameters are PostgreSQL's; run it on its own connection".into(),
    )
}

impl BindArrays for Pg {
    fn push_array<'b>(out: &mut AstPass<'_, 'b, Pg>, array: &'b Array<'_>) -> QueryResult<()> {
        use diesel::sql_types::Array as A;
        match array {
            Array::BigInt(v) => out.push_bind_param::<A<BigInt>, _>(v),
            Array::Integer(v) => out.push_bind_param::<A<Integer>, _>(v),
            Array::Text(v) => out.push_bind_param::<A<Text>, _>(v),
            Array::NullableBigInt(v) => out.push_bind_param::<A<Nullable<BigInt>>, _>(v),
            Array::NullableText(v) => out.push_bind_param::<A<Nullable<Text>>, _>(v),
            Array::Timestamp(v) => out.push_bind_param::<A<Timestamp>, _>(v),
            Array::NullableTimestamp(v) => out.push_bind_param::<A<Nullable<Timestamp>>, _>(v),
        }
    }
}

impl BindArrays for Sqlite {
    fn push_array<'b>(_: &mut AstPass<'_, 'b, Sqlite>, _: &'b Array<'_>) -> QueryResult<()> {
        Err(no_arrays())
    }
}

impl BindArrays for Multi {
    fn push_array<'b>(_: &mut AstPass<'_, 'b, Multi>, _: &'b Array<'_>) -> QueryResult<()> {
        Err(no_arrays())
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
    DB: BindArrays + HasSqlType<BigInt> + HasSqlType<Integer> + HasSqlType<Text> + HasSqlType<Timestamp>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    str: ToSql<Text, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if self.planning == Planning::EachTime && out.backend().is_postgres() {
            out.unsafe_to_cache_prepared();
        }
        // On SQLite a timestamp is text: bound as the text made once for this statement.
        const NO_TIME: Option<&str> = None;
        let on_sqlite = !out.backend().is_postgres();
        let mut sqlite_times = if on_sqlite { self.sqlite_times() } else { &[] }.iter();
        let mut start = 0;
        for (at, bind) in &self.binds {
            out.push_sql(&self.sql[start..*at]);
            let value = match bind {
                Bind::One(value) => value,
                Bind::Array(array) => {
                    DB::push_array(&mut out, array)?;
                    start = *at;
                    continue;
                }
            };
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
            start = *at;
        }
        out.push_sql(&self.sql[start..]);
        Ok(())
    }
}

/// Rows (or keys, or ids) per multi-row statement: few enough shapes to keep prepared (one per count up
/// to this), many rows per statement.
pub const ROWS_PER_STATEMENT: usize = 32;

/// Rows per set-based statement on PostgreSQL (`UNNEST` of one array per column): one shape for any
/// count, so a group of 2,000 events is a statement per table, not 63; bounded so that no statement's
/// arrays grow without limit.
pub const ROWS_PER_SET: usize = 4096;

/// Whether `conn` is PostgreSQL's (where statements take arrays).
pub fn is_postgres(conn: &AnyConnection) -> bool {
    matches!(conn, AnyConnection::Postgresql(_))
}

/// Inserts `rows` into `table` (their declared [`Columns`]): on PostgreSQL in one statement per
/// [`ROWS_PER_SET`] rows (`INSERT … SELECT * FROM UNNEST(column arrays)`), on SQLite with multi-row
/// statements of at most [`ROWS_PER_STATEMENT`] rows each, every shape kept prepared. (Diesel's own batch
/// insert runs one statement per row on SQLite, and none at all on the two-backend connection.)
pub fn insert_rows<T, R: Columns<T>>(conn: &mut AnyConnection, _table: T, rows: &[R]) -> QueryResult<usize> {
    if is_postgres(conn) {
        return execute_all(conn, unnest_inserts(rows, ""));
    }
    execute_all(conn, inserts(rows, ""))
}

/// [`insert_rows`], where a row whose key (the columns declared by `K`) is stored already sets that
/// row's other declared columns instead (`ON CONFLICT (key) DO UPDATE SET c = excluded.c, …`).
pub fn upsert_rows<K, T, R>(conn: &mut AnyConnection, _table: T, rows: &[R]) -> QueryResult<usize>
where
    K: Columns<T>,
    R: Columns<T>,
{
    let then = on_conflict_update::<K, T, R>();
    if is_postgres(conn) {
        return execute_all(conn, unnest_inserts(rows, &then));
    }
    execute_all(conn, inserts(rows, &then))
}

/// The PostgreSQL statements inserting `rows` as columns of arrays, each followed by `then`.
fn unnest_inserts<'r, T, R: Columns<T>, ST>(
    rows: &'r [R],
    then: &'r str,
) -> impl Iterator<Item = Dynamic<'r, ST>> {
    let head = format!(
        "INSERT INTO {} ({}) SELECT * FROM ",
        R::TABLE,
        R::NAMES.join(", ")
    );
    rows.chunks(ROWS_PER_SET).map(move |chunk| {
        let mut statement = Dynamic::new(head.as_str());
        statement.push_unnest(Array::columns(chunk));
        statement.sql(then)
    })
}

/// [`insert_rows`], where a row whose key (the columns declared by `K`) is stored already adds its other
/// declared columns to the stored ones (`ON CONFLICT (key) DO UPDATE SET c = table.c + excluded.c`): a
/// counter's increments, summed by the database under the row's lock. On PostgreSQL one statement per
/// [`ROWS_PER_SET`] rows, which refuses to update one row twice: callers sum their rows by key first.
pub fn add_rows<K, T, R>(conn: &mut AnyConnection, _table: T, rows: &[R]) -> QueryResult<usize>
where
    K: Columns<T>,
    R: Columns<T>,
{
    let set: Vec<String> = R::NAMES
        .iter()
        .filter(|column| !K::NAMES.contains(column))
        .map(|column| format!("{column} = {}.{column} + excluded.{column}", R::TABLE))
        .collect();
    let then = format!(
        " ON CONFLICT ({}) DO UPDATE SET {}",
        K::NAMES.join(", "),
        set.join(", ")
    );
    if is_postgres(conn) {
        return execute_all(conn, unnest_inserts(rows, &then));
    }
    execute_all(conn, inserts(rows, &then))
}

/// [`insert_rows`], leaving out the rows whose key is stored already (`ON CONFLICT DO NOTHING`).
pub fn insert_new_rows<T, R: Columns<T>>(
    conn: &mut AnyConnection,
    _table: T,
    rows: &[R],
) -> QueryResult<usize> {
    let then = " ON CONFLICT DO NOTHING";
    if is_postgres(conn) {
        return execute_all(conn, unnest_inserts(rows, then));
    }
    execute_all(conn, inserts(rows, then))
}

/// [`insert_new_rows`] that answers the `key` (a text column) of each row it inserted, leaving out the
/// rows stored already (`… ON CONFLICT DO NOTHING RETURNING key`): which rows this statement was the first
/// to write, what an insert-or-nothing race is decided by. On PostgreSQL one statement per
/// [`ROWS_PER_SET`] rows (`UNNEST`), in the rows' order (callers sort them, so that two transactions
/// inserting overlapping sets wait for each other in one order and never deadlock); on SQLite multi-row
/// statements of at most [`ROWS_PER_STATEMENT`] rows.
pub fn insert_new_rows_returning<T, R, K>(
    conn: &mut AnyConnection,
    _table: T,
    rows: &[R],
    _key: K,
) -> QueryResult<Vec<String>>
where
    R: Columns<T>,
    K: diesel::Column<SqlType = Text>,
{
    let then = format!(" ON CONFLICT DO NOTHING RETURNING {}", K::NAME);
    let statements: Vec<Dynamic<'_, Text>> = if is_postgres(conn) {
        unnest_inserts(rows, &then).collect()
    } else {
        inserts(rows, &then).collect()
    };
    let mut inserted = Vec::with_capacity(rows.len());
    for statement in statements {
        inserted.extend(statement.load_rows::<String>(conn)?);
    }
    Ok(inserted)
}

fn execute_all<'r>(
    conn: &mut AnyConnection,
    statements: impl Iterator<Item = Dynamic<'r, BigInt>>,
) -> QueryResult<usize> {
    let mut written = 0;
    for statement in statements {
        written += statement.execute(conn)?;
    }
    Ok(written)
}

/// The SQLite statements inserting `rows`, each followed by `then`.
///
/// `OR FAIL`: a statement that breaks a constraint stops there and keeps the rows before it, where the
/// default (`ABORT`) undoes them, which makes SQLite copy every page a multi-row statement changes into a
/// statement journal first. Nothing here goes on after a failed insert: every caller gives the error to
/// its transaction (or savepoint), which rolls back all of it. The journal was about two fifths of what
/// inserting a group's lot holdings cost the ingest writer (`docs/performance.md`, "Issuance and transfers
/// before and after lots"). Tables with immediate foreign keys keep their journal: a statement that breaks
/// one is undone whatever its conflict clause says.
fn inserts<'r, T, R: Columns<T>, ST>(rows: &'r [R], then: &'r str) -> impl Iterator<Item = Dynamic<'r, ST>> {
    let head = format!(
        "INSERT OR FAIL INTO {} ({}) VALUES ",
        R::TABLE,
        R::NAMES.join(", ")
    );
    rows.chunks(ROWS_PER_STATEMENT).map(move |chunk| {
        let mut statement = Dynamic::new(head.as_str());
        statement.binds.reserve_exact(chunk.len() * R::NAMES.len());
        statement.push_tuples(chunk.iter().map(Columns::values));
        statement.sql(then)
    })
}

/// ` ON CONFLICT (k, …) DO UPDATE SET c = excluded.c, …`: `R`'s columns other than `K`'s are set.
fn on_conflict_update<K: Columns<T>, T, R: Columns<T>>() -> String {
    let set: Vec<String> = R::NAMES
        .iter()
        .filter(|column| !K::NAMES.contains(column))
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    format!(
        " ON CONFLICT ({}) DO UPDATE SET {}",
        K::NAMES.join(", "),
        set.join(", ")
    )
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

/// Statements `select` (a query of `table`) restricted to the rows that match any of `keys` exactly, on
/// the key's declared [`Columns`]. On PostgreSQL one statement per [`ROWS_PER_SET`] keys, the keys bound as
/// one array per column (`WHERE (k1, k2) IN (SELECT * FROM UNNEST(…))`, a join over the key's index); on
/// SQLite ORed equality terms, each an index lookup, at most [`ROWS_PER_STATEMENT`] keys per statement.
/// The caller loads each with [`Dynamic::load_rows`].
pub fn matching<'v, ST, T, K: Columns<T>>(
    conn: &AnyConnection,
    table: T,
    select: &str,
    keys: &'v [K],
    planning: Planning,
) -> Vec<Dynamic<'v, ST>> {
    matching_aliased(conn, "", table, select, keys, planning)
}

/// [`matching`] where `select` names the keyed table `alias` (`FROM activities a`): the key's columns are
/// written `alias.column`.
pub fn matching_aliased<'v, ST, T, K: Columns<T>>(
    conn: &AnyConnection,
    alias: &str,
    _table: T,
    select: &str,
    keys: &'v [K],
    planning: Planning,
) -> Vec<Dynamic<'v, ST>> {
    let qualifier = if alias.is_empty() {
        String::new()
    } else {
        format!("{alias}.")
    };
    if is_postgres(conn) {
        let key: Vec<String> = K::NAMES.iter().map(|c| format!("{qualifier}{c}")).collect();
        let head = format!("{select} WHERE ({}) IN (SELECT * FROM ", key.join(", "));
        return keys
            .chunks(ROWS_PER_SET)
            .map(|chunk| {
                let mut statement = Dynamic::new(head.as_str());
                statement.push_unnest(Array::columns(chunk));
                statement.sql(")").planned(planning)
            })
            .collect();
    }
    keys.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut statement = Dynamic::new(format!("{select} WHERE "));
            for (i, key) in chunk.iter().enumerate() {
                statement.push_sql(if i == 0 { "(" } else { " OR (" });
                for (j, (column, value)) in K::NAMES.iter().zip(key.values()).enumerate() {
                    if j > 0 {
                        statement.push_sql(" AND ");
                    }
                    statement.push_sql(&qualifier);
                    statement.push_sql(column);
                    statement.push_sql(" = ");
                    statement.push_bind(value);
                }
                statement.push_sql(")");
            }
            statement.planned(planning)
        })
        .collect()
}

/// Statements `head (id, id, …)` (`head` ends with `… IN `): on PostgreSQL one statement per
/// [`ROWS_PER_SET`] ids, bound as one array (`IN (SELECT UNNEST($n::bigint[]))`); on SQLite each list
/// holding at most [`ROWS_PER_STATEMENT`] of `ids`. Diesel's own `eq_any` writes one `?` per value on
/// SQLite and so is never kept prepared; these are, one shape per list length. The caller loads each with
/// [`Dynamic::load_rows`].
pub fn in_list<'v, ST>(
    conn: &AnyConnection,
    head: Dynamic<'v, ST>,
    ids: &[i64],
    planning: Planning,
) -> Vec<Dynamic<'v, ST>> {
    if is_postgres(conn) {
        return ids
            .chunks(ROWS_PER_SET)
            .map(|chunk| {
                let mut statement = head.clone();
                statement.push_sql("(SELECT UNNEST(");
                statement.push_array(Array::BigInt(chunk.to_vec()));
                statement.sql("))").planned(planning)
            })
            .collect();
    }
    ids.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut statement = head.clone();
            statement.push_tuple(chunk.iter().map(|&id| Value::BigInt(id)));
            statement.planned(planning)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::SqliteConnection;

    use super::*;
    use crate::db::columns::columns;
    use crate::db::schema::{daily_grants, transfers};

    fn sqlite() -> AnyConnection {
        AnyConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap())
    }

    fn sql_of(statement: &Dynamic<'_, BigInt>) -> String {
        diesel::debug_query::<Sqlite, _>(statement)
            .to_string()
            .split(" -- binds:")
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn binds_between_parts_and_reuses_the_statement() {
        let mut conn = sqlite();
        conn.batch_execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO t VALUES (1, 0), (2, 0);",
        )
        .unwrap();
        let add = |conn: &mut AnyConnection, id, n| {
            Dynamic::<BigInt>::new("UPDATE t SET n = n + ")
                .bind(Value::BigInt(n))
                .sql(" WHERE id = ")
                .bind(Value::BigInt(id))
                .sql(" RETURNING n")
                .get_result::<i64>(conn)
                .unwrap()
        };
        assert_eq!(add(&mut conn, 1, 5), 5);
        assert_eq!(add(&mut conn, 1, 7), 12);
        assert_eq!(add(&mut conn, 2, 1), 1);
    }

    /// A `?` in a literal is text: the parameters stay where they were pushed.
    fn question_marks_in_literals(conn: &mut AnyConnection) {
        let statement = Dynamic::<(Text, Text, BigInt)>::new("SELECT 'why?' AS a, ")
            .bind(Value::Text("because"))
            .sql(" AS b, CAST(")
            .bind(Value::BigInt(42))
            .sql(" AS BIGINT) + length('??') AS c");
        let row: (String, String, i64) = statement.get_result(conn).unwrap();
        assert_eq!(row, ("why?".into(), "because".into(), 44));
    }

    #[test]
    fn a_question_mark_in_a_literal_does_not_shift_the_parameters() {
        question_marks_in_literals(&mut sqlite());
        // PostgreSQL where the test setup has one (it numbers its parameters, `$1`, `$2`).
        if let Ok(url) = std::env::var("TANHUI_TEST_DATABASE_URL") {
            let conn = PgConnection::establish(&url).expect("the test PostgreSQL");
            question_marks_in_literals(&mut AnyConnection::Postgresql(conn));
        }
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

    struct Times {
        at: NaiveDateTime,
        until: Option<NaiveDateTime>,
    }

    columns! {
        transfers for Times, |row| {
            created_at: row.at,
            timeout_at: row.until,
        }
    }

    #[test]
    fn timestamps_bind_as_sqlite_text_and_read_back() {
        let mut conn = sqlite();
        conn.batch_execute("CREATE TABLE transfers (created_at TIMESTAMP NOT NULL, timeout_at TIMESTAMP);")
            .unwrap();
        let at = chrono::DateTime::from_timestamp(1_796_184_424, 485_038_000)
            .unwrap()
            .naive_utc();
        let rows = [Times { at, until: None }, Times { at, until: Some(at) }];
        insert_rows(&mut conn, transfers::table, &rows).unwrap();
        let read: Vec<(NaiveDateTime, Option<NaiveDateTime>)> = diesel::sql_query(
            "SELECT created_at AS at, timeout_at AS until FROM transfers ORDER BY until IS NULL DESC",
        )
        .load::<Stamps>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|r| (r.at, r.until))
        .collect();
        assert_eq!(read, vec![(at, None), (at, Some(at))]);
        let text: Vec<Texts> = diesel::sql_query("SELECT created_at AS at FROM transfers")
            .load(&mut conn)
            .unwrap();
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

    /// A row of a counter table in three of its columns, and its key.
    struct Grant<'a> {
        account: i64,
        kind: &'a str,
        granted: i64,
    }

    columns! {
        daily_grants for Grant<'_>, |row| {
            account_id: row.account,
            activity_type: row.kind,
            granted_g: row.granted,
        }
    }

    columns! {
        daily_grants for (i64, &str), |(account, kind)| {
            account_id: *account,
            activity_type: *kind,
        }
    }

    const GRANTS_TABLE: &str = "CREATE TABLE daily_grants (account_id BIGINT, activity_type TEXT, \
                                granted_g BIGINT, PRIMARY KEY (account_id, activity_type));";

    #[test]
    fn statements_keep_their_shapes() {
        let rows: Vec<Grant<'_>> = (0..33)
            .map(|i| Grant {
                account: i,
                kind: "walking",
                granted: 1,
            })
            .collect();
        let statements: Vec<String> = inserts(&rows, "").map(|s| sql_of(&s)).collect();
        let tuple = "(?, ?, ?)";
        assert_eq!(
            statements,
            vec![
                format!(
                    "INSERT OR FAIL INTO daily_grants (account_id, activity_type, granted_g) VALUES {}",
                    vec![tuple; 32].join(", ")
                ),
                format!(
                    "INSERT OR FAIL INTO daily_grants (account_id, activity_type, granted_g) VALUES {tuple}"
                ),
            ]
        );
        assert_eq!(
            on_conflict_update::<(i64, &str), daily_grants::table, Grant<'_>>(),
            " ON CONFLICT (account_id, activity_type) DO UPDATE SET granted_g = excluded.granted_g"
        );
        let keys = [(1, "walking"), (2, "cycling")];
        let sqlite = sqlite();
        let lookups = matching::<BigInt, _, _>(
            &sqlite,
            daily_grants::table,
            "SELECT n FROM k",
            &keys,
            Planning::Cached,
        );
        assert_eq!(
            sql_of(&lookups[0]),
            "SELECT n FROM k WHERE (account_id = ? AND activity_type = ?) OR (account_id = ? AND activity_type = ?)"
        );
        let head = Dynamic::new("SELECT id FROM t WHERE at > ")
            .bind(Value::BigInt(0))
            .sql(" AND id IN ");
        let lists = in_list(&sqlite, head, &(0..40).collect::<Vec<i64>>(), Planning::EachTime);
        assert_eq!(
            lists.iter().map(sql_of).collect::<Vec<_>>(),
            [32, 8].map(|n| format!(
                "SELECT id FROM t WHERE at > ? AND id IN ({})",
                vec!["?"; n].join(", ")
            ))
        );
    }

    #[test]
    fn rows_go_in_are_updated_and_are_found_in_chunks() {
        let mut conn = sqlite();
        conn.batch_execute(GRANTS_TABLE).unwrap();
        rows_go_in_are_updated_and_are_found(&mut conn);
        // PostgreSQL where the test setup has one: the same rows as arrays, one statement each. A
        // temporary table lives only in this session, beside whatever the shared database holds.
        if let Ok(url) = std::env::var("TANHUI_TEST_DATABASE_URL") {
            let mut conn =
                AnyConnection::Postgresql(PgConnection::establish(&url).expect("the test PostgreSQL"));
            conn.batch_execute(&GRANTS_TABLE.replace("CREATE TABLE", "CREATE TEMPORARY TABLE"))
                .unwrap();
            rows_go_in_are_updated_and_are_found(&mut conn);
        }
    }

    /// A multi-row insert that breaks a key in its second row leaves nothing once its transaction rolls
    /// back, which is what every caller of these inserts does with an error.
    #[test]
    fn a_failed_insert_leaves_nothing_after_its_transaction() {
        let mut conn = sqlite();
        conn.batch_execute(GRANTS_TABLE).unwrap();
        let rows =
            [(1, "walking", 1), (1, "walking", 2), (2, "cycling", 3)].map(|(account, kind, granted)| Grant {
                account,
                kind,
                granted,
            });
        let failed = crate::db::transaction(&mut conn, crate::db::Tx::Write, |conn| {
            insert_rows(conn, daily_grants::table, &rows)
        });
        assert!(failed.is_err());
        assert_eq!(
            crate::db::count(&mut conn, "SELECT count(*) AS n FROM daily_grants"),
            0
        );
    }

    fn rows_go_in_are_updated_and_are_found(conn: &mut AnyConnection) {
        let names: Vec<String> = (0..70).map(|i| format!("k{i}")).collect();
        let mut rows: Vec<Grant<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Grant {
                account: i as i64 % 3,
                kind: name,
                granted: i as i64,
            })
            .collect();
        assert_eq!(insert_rows(conn, daily_grants::table, &rows).unwrap(), 70);
        for row in &mut rows[..35] {
            row.granted += 100;
        }
        upsert_rows::<(i64, &str), _, _>(conn, daily_grants::table, &rows[..35]).unwrap();
        // Every third key exists; the others name the wrong account.
        let keys: Vec<(i64, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (if i % 3 == 0 { 0 } else { 9 }, name.as_str()))
            .collect();
        let mut found: Vec<i64> = Vec::new();
        for query in matching::<BigInt, _, _>(
            conn,
            daily_grants::table,
            "SELECT granted_g FROM daily_grants",
            &keys,
            Planning::Cached,
        ) {
            found.extend(query.load_rows::<i64>(conn).unwrap());
        }
        found.sort_unstable();
        let mut expected: Vec<i64> = (0..70)
            .step_by(3)
            .map(|i| if i < 35 { i + 100 } else { i })
            .collect();
        expected.sort_unstable();
        assert_eq!(found, expected);
        // By a list of ids: the accounts 1 and 2 (and one that has none).
        let head = Dynamic::<BigInt>::new("SELECT granted_g FROM daily_grants WHERE account_id IN ");
        let mut listed: Vec<i64> = Vec::new();
        for query in in_list(conn, head, &[1, 2, 7], Planning::EachTime) {
            listed.extend(query.load_rows::<i64>(conn).unwrap());
        }
        assert_eq!(listed.len(), 70 - 24);
    }
}
