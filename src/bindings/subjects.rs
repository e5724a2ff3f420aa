//! Whom a provider's event is for: a person named by Tanhui's `user_id`, or by the provider's own
//! `external_ref` through a live binding.

use std::collections::HashMap;

use diesel::prelude::*;

use super::store;
use crate::activities::model::Poster;
use crate::db::schema::users;
use crate::db::AnyConnection;
use crate::error::{ApiError, ErrorCode};

/// The person an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(i64),
    Ref(String),
}

/// Takes the subject out of a provider's event (`user_id` or `external_ref`, exactly one), leaving an
/// activity as apps post it.
pub fn take_subject(event: &mut serde_json::Value) -> Result<Subject, ApiError> {
    let object = event
        .as_object_mut()
        .ok_or_else(|| ApiError::field("event", "must be an object"))?;
    let user_id = object.remove("user_id");
    let external_ref = object.remove("external_ref");
    match (user_id, external_ref) {
        (Some(id), None) => id
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .or_else(|| id.as_i64())
            .map(Subject::User)
            .ok_or_else(|| ApiError::field("user_id", "must be a user id")),
        (None, Some(r)) => r
            .as_str()
            .map(|r| Subject::Ref(r.trim().to_string()))
            .ok_or_else(|| ApiError::field("external_ref", "must be a string")),
        (Some(_), Some(_)) => Err(ApiError::field(
            "external_ref",
            "name the person by user_id or by external_ref, not both",
        )),
        (None, None) => Err(ApiError::field(
            "user_id",
            "is required (or external_ref): the person who made the trip",
        )),
    }
}

/// The poster of each subject for `provider_id` (whose operator code, if it has one, is
/// `operator_code`), in order: read in two queries whatever their number.
/// A user id that is no person's is 422 `unknown_user`; a reference with no live binding to this provider,
/// 422 `unbound`.
pub fn posters(
    conn: &mut AnyConnection,
    provider_id: i64,
    operator_code: Option<&str>,
    subjects: &[Subject],
) -> QueryResult<Vec<Result<Poster, ApiError>>> {
    let refs: Vec<&str> = subjects
        .iter()
        .filter_map(|s| match s {
            Subject::Ref(r) => Some(r.as_str()),
            Subject::User(_) => None,
        })
        .collect();
    let bound = store::resolve(conn, provider_id, &refs)?;
    let mut ids: Vec<i64> = subjects
        .iter()
        .filter_map(|s| match s {
            Subject::User(id) => Some(*id),
            Subject::Ref(r) => bound.get(r).copied(),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let people: HashMap<i64, (i64, String)> = users::table
        .filter(users::id.eq_any(&ids))
        .filter(users::is_admin.eq(false))
        .select((users::id, users::account_id, users::region_code))
        .load::<(i64, i64, String)>(conn)?
        .into_iter()
        .map(|(id, account, region)| (id, (account, region)))
        .collect();
    let poster = |user_id: i64| {
        people.get(&user_id).map(|(account_id, region)| Poster {
            user_id,
            account_id: *account_id,
            home_region: region.clone(),
            provider_id: Some(provider_id),
            operator_code: operator_code.map(str::to_string),
        })
    };
    Ok(subjects
        .iter()
        .map(|subject| match subject {
            Subject::User(id) => {
                poster(*id).ok_or_else(|| ApiError::unprocessable(ErrorCode::UnknownUser, "no such user"))
            }
            Subject::Ref(r) => bound.get(r).and_then(|id| poster(*id)).ok_or_else(|| {
                ApiError::unprocessable(
                    ErrorCode::Unbound,
                    format!("no person has bound `{r}` to this provider (or the binding was removed)"),
                )
            }),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_names_its_person_once() {
        let mut by_id = json!({"user_id": "42", "activity_type": "walking"});
        assert_eq!(take_subject(&mut by_id).unwrap(), Subject::User(42));
        assert_eq!(by_id, json!({"activity_type": "walking"}));
        let mut by_number = json!({"user_id": 42});
        assert_eq!(take_subject(&mut by_number).unwrap(), Subject::User(42));
        let mut by_ref = json!({"external_ref": " card-7 "});
        assert_eq!(take_subject(&mut by_ref).unwrap(), Subject::Ref("card-7".into()));
        for mut bad in [
            json!({"user_id": 1, "external_ref": "x"}),
            json!({}),
            json!({"user_id": "abc"}),
            json!({"external_ref": 7}),
            json!([1]),
        ] {
            assert!(take_subject(&mut bad).is_err(), "{bad}");
        }
    }
}
