//! A draft's request, checked against the catalog before any database work: the region and its subtree,
//! the types, the window.

use chrono::NaiveDateTime;

use super::views::DraftRequest;
use crate::domain::catalog::{Catalog, NATION};
use crate::methodology::impact::{check_window, WindowError};

/// The most activity types one draft names.
pub const ACTIVITY_TYPES_MAX: usize = 64;

/// A draft request that can be drafted.
#[derive(Debug)]
pub struct ValidDraft {
    pub region_code: String,
    /// The regions of its subtree, itself included; `None` for the nation (every region).
    pub regions: Option<Vec<String>>,
    /// Sorted, without duplicates; `None`: every type.
    pub activity_types: Option<Vec<String>>,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
}

/// Why a draft request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DraftError {
    #[error("unknown region `{0}`")]
    UnknownRegion(String),
    #[error("unknown activity type `{0}`")]
    UnknownActivityType(String),
    #[error("must name between 1 and {ACTIVITY_TYPES_MAX} activity types (leave it out for every type)")]
    TypeCount,
    #[error(transparent)]
    Window(#[from] WindowError),
}

pub fn check(request: DraftRequest, catalog: &Catalog) -> Result<ValidDraft, DraftError> {
    let (from, to) = (request.from.naive_utc(), request.to.naive_utc());
    check_window(from, to)?;
    let root = request.region_code;
    if catalog.region(&root).is_none() {
        return Err(DraftError::UnknownRegion(root));
    }
    let regions = (root != NATION).then(|| {
        catalog
            .region_codes()
            .filter(|code| catalog.is_within(code, &root))
            .map(str::to_string)
            .collect()
    });
    let activity_types = match request.activity_types {
        None => None,
        Some(types) if types.is_empty() || types.len() > ACTIVITY_TYPES_MAX => {
            return Err(DraftError::TypeCount)
        }
        Some(mut types) => {
            if let Some(unknown) = types.iter().find(|t| catalog.activity_type(t).is_none()) {
                return Err(DraftError::UnknownActivityType(unknown.clone()));
            }
            types.sort();
            types.dedup();
            Some(types)
        }
    };
    Ok(ValidDraft {
        region_code: root,
        regions,
        activity_types,
        from,
        to,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, FixedOffset};

    use super::*;
    use crate::domain::catalog::RegionInfo;

    fn catalog() -> Catalog {
        let region = |code: &str, parent: Option<&str>| RegionInfo {
            code: code.into(),
            parent: parent.map(Into::into),
            grid_region: None,
        };
        Catalog::new(
            vec![
                region("CN", None),
                region("440000", Some("CN")),
                region("440300", Some("440000")),
                region("420000", Some("CN")),
            ],
            vec![],
            vec![],
            vec![],
        )
    }

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn request(region: &str, types: Option<Vec<&str>>, to: &str) -> DraftRequest {
        DraftRequest {
            region_code: region.into(),
            activity_types: types.map(|t| t.into_iter().map(String::from).collect()),
            from: at("2027-01-01T00:00:00+08:00"),
            to: at(to),
        }
    }

    #[test]
    fn a_draft_reads_its_regions_subtree_and_the_nation_reads_everywhere() {
        let c = catalog();
        let province = check(request("440000", None, "2027-02-01T00:00:00+08:00"), &c).unwrap();
        let mut regions = province.regions.unwrap();
        regions.sort();
        assert_eq!(regions, ["440000", "440300"]);
        assert_eq!(province.activity_types, None);
        assert_eq!(province.from, at("2026-12-31T16:00:00Z").naive_utc());
        let nation = check(request("CN", None, "2027-02-01T00:00:00+08:00"), &c).unwrap();
        assert_eq!(nation.regions, None);
    }

    #[test]
    fn regions_types_and_windows_are_bounded() {
        let c = catalog();
        let month = "2027-02-01T00:00:00+08:00";
        assert_eq!(
            check(request("999999", None, month), &c).unwrap_err(),
            DraftError::UnknownRegion("999999".into())
        );
        assert_eq!(
            check(request("440000", Some(vec![]), month), &c).unwrap_err(),
            DraftError::TypeCount
        );
        let many = vec!["walking"; ACTIVITY_TYPES_MAX + 1];
        assert_eq!(
            check(request("440000", Some(many), month), &c).unwrap_err(),
            DraftError::TypeCount
        );
        assert_eq!(
            check(request("440000", Some(vec!["walking"]), month), &c).unwrap_err(),
            DraftError::UnknownActivityType("walking".into())
        );
        assert_eq!(
            check(request("440000", None, "2027-01-01T00:00:00+08:00"), &c).unwrap_err(),
            DraftError::Window(WindowError::Empty)
        );
        assert_eq!(
            check(request("440000", None, "2028-01-03T00:00:00+08:00"), &c).unwrap_err(),
            DraftError::Window(WindowError::TooLong)
        );
    }
}
