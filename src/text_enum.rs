//! States and codes as types: `text_enum!` declares an enum that is written as a fixed snake_case string
//! everywhere it leaves the process (JSON, the database on both backends, the OpenAPI document, stored
//! request hashes), so renaming a variant never changes what was stored or sent.
//!
//! The text is spelled once per variant in the declaration; `Debug` output is never used for any of it.

/// A value that is not one of an enum's texts (from the database, a query string or a header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind}: {value:?}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

/// Declares `enum Name { Variant = "text", … }` with serde, utoipa (`ToSchema`, listed as an enum of its
/// texts), `as_str`, `FromStr`, `Display`, `ALL`, and diesel's `Text` mapping on both backends (also as a
/// declared column's value, [`BindAs`](crate::db::columns::BindAs)).
///
/// Each text is matched as a token tree, not a `literal` fragment: a fragment reaches derive macros
/// wrapped in an invisible group, which utoipa does not read as a `rename`, so the OpenAPI document
/// listed the variants' Rust names instead of their texts.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text this variant is stored and sent as.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::text_enum::UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::text_enum::UnknownVariant {
                        kind: stringify!($name),
                        value: s.chars().take(64).collect(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'r> $crate::db::columns::BindAs<'r, diesel::sql_types::Text> for $name {
            fn value(self) -> $crate::db::columns::Value<'r> {
                $crate::db::columns::Value::Text(self.as_str())
            }
        }

        impl<'r, 's: 'r> $crate::db::columns::BindAs<'r, diesel::sql_types::Text> for &'s $name {
            fn value(self) -> $crate::db::columns::Value<'r> {
                $crate::db::columns::Value::Text(self.as_str())
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, DB>>::to_sql(self.as_str(), out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, DB>>::from_sql(bytes)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    crate::text_enum! {
        /// A test enum whose variant names differ from their texts.
        enum Sample {
            First = "first_one",
            Second = "second",
        }
    }

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        value: Sample,
    }

    #[test]
    fn texts_round_trip_through_json_and_parsing() {
        for &s in Sample::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), s);
            assert_eq!(s.as_str().parse::<Sample>().unwrap(), s);
        }
        assert_eq!(Sample::First.to_string(), "first_one");
        let err = "First".parse::<Sample>().unwrap_err();
        assert_eq!(err.kind, "Sample");
    }

    #[test]
    fn the_schema_lists_the_texts() {
        let schema = serde_json::to_value(<Sample as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(["first_one", "second"]));
    }

    #[test]
    fn texts_round_trip_through_sqlite() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let row: Row = diesel::sql_query("SELECT ? AS value")
            .bind::<Text, _>(Sample::First)
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(row.value, Sample::First);
        let stored: String = diesel::select(diesel::dsl::sql::<Text>("'second'"))
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(stored.parse::<Sample>().unwrap(), Sample::Second);
        let bad = diesel::sql_query("SELECT 'third' AS value").get_result::<Row>(&mut conn);
        assert!(bad.is_err(), "an unknown text is an error, not a default");
    }
}
