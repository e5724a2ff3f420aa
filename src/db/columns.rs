//! Rows declared against the schema: which columns of a table a row type fills, and the value of each,
//! written once (with [`columns!`](crate::db::columns::columns)), so a column list and a value list cannot
//! drift apart.
//!
//! A declaration names each column by its path in `schema.rs`: a column that is not there, or a value of a
//! Rust type that does not bind as the column's SQL type ([`BindAs`]), does not compile. The multi-row
//! statements of [`prepared`](super::prepared) take their column names and their values from it.

use chrono::NaiveDateTime;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};

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

/// A row type's values for some columns of table `T`, in the order of [`Columns::NAMES`]. Implemented by
/// [`columns!`](crate::db::columns::columns), never by hand.
pub trait Columns<T> {
    /// The table's name, as in `schema.rs`.
    const TABLE: &'static str;
    /// The declared columns' names, as in `schema.rs`, in declaration order.
    const NAMES: &'static [&'static str];
    /// The declared columns' SQL types, in the same order (what selecting them loads).
    type SqlType;
    /// The row's value of each declared column, in the same order.
    fn values(&self) -> impl Iterator<Item = Value<'_>>;
}

impl<T, R: Columns<T>> Columns<T> for &R {
    const TABLE: &'static str = R::TABLE;
    const NAMES: &'static [&'static str] = R::NAMES;
    type SqlType = R::SqlType;

    fn values(&self) -> impl Iterator<Item = Value<'_>> {
        (**self).values()
    }
}

/// A Rust value that binds as the SQL type `ST` (nullable columns take an `Option`).
pub trait BindAs<'r, ST> {
    fn value(self) -> Value<'r>;
}

impl<'r> BindAs<'r, BigInt> for i64 {
    fn value(self) -> Value<'r> {
        Value::BigInt(self)
    }
}

impl<'r> BindAs<'r, Nullable<BigInt>> for Option<i64> {
    fn value(self) -> Value<'r> {
        Value::NullableBigInt(self)
    }
}

impl<'r> BindAs<'r, Integer> for i32 {
    fn value(self) -> Value<'r> {
        Value::Integer(self)
    }
}

impl<'r, 's: 'r> BindAs<'r, Text> for &'s str {
    fn value(self) -> Value<'r> {
        Value::Text(self)
    }
}

impl<'r, 's: 'r> BindAs<'r, Text> for &'s String {
    fn value(self) -> Value<'r> {
        Value::Text(self)
    }
}

impl<'r, 's: 'r> BindAs<'r, Nullable<Text>> for Option<&'s str> {
    fn value(self) -> Value<'r> {
        Value::NullableText(self)
    }
}

impl<'r> BindAs<'r, Timestamp> for NaiveDateTime {
    fn value(self) -> Value<'r> {
        Value::Timestamp(self)
    }
}

impl<'r> BindAs<'r, Nullable<Timestamp>> for Option<NaiveDateTime> {
    fn value(self) -> Value<'r> {
        Value::NullableTimestamp(self)
    }
}

/// `value` as the bind parameter of column `C`: only a value of a Rust type that binds as `C`'s SQL type
/// compiles.
pub fn bind<'r, C, T>(value: T) -> Value<'r>
where
    C: diesel::Expression,
    T: BindAs<'r, C::SqlType>,
{
    value.value()
}

/// Declares which columns of a `schema.rs` table a row type fills, and each one's value:
///
/// ```ignore
/// columns! {
///     /// A transfer's sealing-queue row.
///     unsealed_transfers for TransferRow, |row| {
///         transfer_id: row.id,
///     }
/// }
/// ```
///
/// Each column is named by its `schema.rs` path (its name is diesel's `Column::NAME`), and each value
/// must bind as that column's SQL type ([`BindAs`]): a column missing from the table or a value of the
/// wrong type does not compile.
macro_rules! columns {
    (
        $(#[$doc:meta])*
        $table:ident for $row:ty, |$binding:pat_param| { $($column:ident: $value:expr),+ $(,)? }
    ) => {
        $(#[$doc])*
        impl $crate::db::columns::Columns<$crate::db::schema::$table::table> for $row {
            const TABLE: &'static str = stringify!($table);
            const NAMES: &'static [&'static str] =
                &[$(<$crate::db::schema::$table::$column as diesel::Column>::NAME),+];
            type SqlType = ($(<$crate::db::schema::$table::$column as diesel::Expression>::SqlType,)+);

            fn values(&self) -> impl Iterator<Item = $crate::db::columns::Value<'_>> {
                let $binding = self;
                [$($crate::db::columns::bind::<$crate::db::schema::$table::$column, _>($value)),+].into_iter()
            }
        }
    };
}

pub(crate) use columns;

#[cfg(test)]
mod tests {
    use diesel::query_builder::QueryFragment;
    use diesel::sqlite::Sqlite;

    use super::*;
    use crate::db::schema::idempotency_keys;

    struct Key<'a> {
        scope: &'a str,
        name: String,
        status: i32,
        at: NaiveDateTime,
    }

    columns! {
        idempotency_keys for Key<'_>, |key| {
            scope: key.scope,
            idempotency_key: &key.name,
            status: key.status,
            created_at: key.at,
        }
    }

    /// `schema.rs` as the declarations see it is what the migrations made: every column of every table a
    /// row is declared against can be selected from a migrated database.
    #[test]
    fn the_declared_tables_are_in_the_migrated_database_as_schema_rs_has_them() {
        use crate::db::schema::{
            activities, annual_points, claims, daily_grants, peers, providers, transfers, unsealed_transfers,
        };
        use crate::db::{ConnectOptions, Db};
        use diesel::{QueryDsl, RunQueryDsl};

        let dir = tempfile::tempdir().expect("temp dir");
        let options = ConnectOptions::sqlite_in(&dir);
        let db = Db::connect(options, 1, std::time::Duration::from_secs(5)).expect("db");
        db.migrate().expect("migrations");
        let mut conn = db.get().expect("connection");
        macro_rules! selectable {
            ($($table:ident),+) => {$(
                $table::table
                    .select($table::all_columns)
                    .limit(0)
                    .execute(&mut *conn)
                    .expect(stringify!($table));
            )+};
        }
        selectable!(
            activities,
            annual_points,
            claims,
            daily_grants,
            idempotency_keys,
            peers,
            providers,
            transfers,
            unsealed_transfers
        );
    }

    /// The column names diesel writes for `columns` of a table, as SQLite's quoted identifiers.
    fn diesel_names(columns: impl QueryFragment<Sqlite>) -> String {
        let mut builder = diesel::sqlite::SqliteQueryBuilder::new();
        columns.to_sql(&mut builder, &Sqlite).unwrap();
        diesel::query_builder::QueryBuilder::finish(builder)
    }

    #[test]
    fn a_declaration_names_the_schema_columns_and_yields_a_value_for_each() {
        let names = <Key<'_> as Columns<idempotency_keys::table>>::NAMES;
        let quoted: Vec<String> = names
            .iter()
            .map(|n| format!("`idempotency_keys`.`{n}`"))
            .collect();
        assert_eq!(
            quoted.join(", "),
            diesel_names((
                idempotency_keys::scope,
                idempotency_keys::idempotency_key,
                idempotency_keys::status,
                idempotency_keys::created_at
            ))
        );
        assert_eq!(
            <Key<'_> as Columns<idempotency_keys::table>>::TABLE,
            "idempotency_keys"
        );
        let at = chrono::DateTime::from_timestamp(1_796_184_424, 0)
            .unwrap()
            .naive_utc();
        let key = Key {
            scope: "s",
            name: "k".into(),
            status: 201,
            at,
        };
        let values: Vec<Value<'_>> = key.values().collect();
        assert_eq!(values.len(), names.len());
        assert!(matches!(
            values[..],
            [Value::Text("s"), Value::Text("k"), Value::Integer(201), Value::Timestamp(t)] if t == at
        ));
    }
}
