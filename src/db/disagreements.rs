//! `verify`'s checks that are one aggregate query each: the query lists what disagrees as rows of
//! (id, expected, found), and each row becomes a line of the report.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::AnyConnection;

/// Lines reported per check at most: a damaged table must not flood the report.
const MAX_LINES: i64 = 1000;

#[derive(QueryableByName)]
struct Disagreement {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    expected: i64,
    #[diesel(sql_type = BigInt)]
    found: i64,
}

/// A check: what each line says (with `{id}`, `{expected}` and `{found}` filled in from its row), and the
/// query giving (id, expected, found) for each disagreement.
pub type Check = (&'static str, &'static str);

/// Every disagreement the checks find, one line each, at most [`MAX_LINES`] per check.
pub fn lines<'c>(
    conn: &mut AnyConnection,
    checks: impl IntoIterator<Item = &'c Check>,
) -> QueryResult<Vec<String>> {
    let mut lines = Vec::new();
    for (says, query) in checks {
        let found: Vec<Disagreement> =
            diesel::sql_query(format!("{query} ORDER BY 1 LIMIT {MAX_LINES}")).load(conn)?;
        lines.extend(found.into_iter().map(|d| {
            says.replace("{id}", &d.id.to_string())
                .replace("{expected}", &d.expected.to_string())
                .replace("{found}", &d.found.to_string())
        }));
    }
    Ok(lines)
}
