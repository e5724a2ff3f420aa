//! An administrator's scope: which regions it governs. Pure: built from the live grants and the catalog's
//! region tree, queried without I/O.

use std::sync::Arc;

use actix_web::http::StatusCode;

use super::grants::GrantRole;
use crate::domain::catalog::{Catalog, NATION};
use crate::error::{ApiError, ErrorCode};

/// The regions an administrator governs: each grant's region and everything under it.
#[derive(Clone)]
pub struct Scope {
    /// The regions of the live grants (`CN` for a national administrator).
    roots: Vec<String>,
    national: bool,
    catalog: Arc<Catalog>,
}

/// An administrator acted outside its scope: 403 `out_of_scope`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutOfScope {
    #[error("your administration covers {scope}, not region {region}")]
    Region { scope: String, region: String },
    #[error("this needs a national administrator; your administration covers {scope}")]
    NotNational { scope: String },
}

impl From<OutOfScope> for ApiError {
    fn from(e: OutOfScope) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::OutOfScope, e.to_string())
    }
}

/// The maker of a change tried to approve it: 403.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a second administrator must approve what you drafted or requested")]
pub struct OwnRequest;

impl From<OwnRequest> for ApiError {
    fn from(e: OwnRequest) -> ApiError {
        ApiError::forbidden(e.to_string())
    }
}

/// Maker-checker: the approver of a change must not be the administrator who made it.
pub fn require_second_admin(maker: Option<i64>, approver: i64) -> Result<(), OwnRequest> {
    if maker == Some(approver) {
        Err(OwnRequest)
    } else {
        Ok(())
    }
}

impl Scope {
    /// The scope of these live grants, as (role, region) pairs.
    pub fn new(grants: &[(GrantRole, String)], catalog: Arc<Catalog>) -> Scope {
        let national = grants.iter().any(|(role, _)| *role == GrantRole::Admin);
        let mut roots: Vec<String> = grants.iter().map(|(_, region)| region.clone()).collect();
        roots.sort();
        roots.dedup();
        Scope {
            roots,
            national,
            catalog,
        }
    }

    /// Whether the administrator is national (it alone grants roles and changes activity types).
    pub fn is_national(&self) -> bool {
        self.national
    }

    /// Whether `region` is one of the scope's regions or lies below one.
    pub fn covers(&self, region: &str) -> bool {
        self.national || self.roots.iter().any(|root| self.catalog.is_within(region, root))
    }

    /// `Ok` when the scope covers `region`.
    pub fn check(&self, region: &str) -> Result<(), OutOfScope> {
        if self.covers(region) {
            Ok(())
        } else {
            Err(OutOfScope::Region {
                scope: self.describe(),
                region: region.to_string(),
            })
        }
    }

    /// `Ok` when the scope covers every one of `regions` (an empty list means everywhere: national).
    pub fn check_all<'r>(&self, regions: impl IntoIterator<Item = &'r str>) -> Result<(), OutOfScope> {
        let mut any = false;
        for region in regions {
            any = true;
            self.check(region)?;
        }
        if any {
            Ok(())
        } else {
            self.check(NATION)
        }
    }

    /// `Ok` for a national administrator.
    pub fn check_national(&self) -> Result<(), OutOfScope> {
        if self.national {
            Ok(())
        } else {
            Err(OutOfScope::NotNational {
                scope: self.describe(),
            })
        }
    }

    /// Every region code the scope covers (`None`: all of them), for filtering lists in SQL.
    pub fn region_codes(&self) -> Option<Vec<String>> {
        if self.national {
            return None;
        }
        Some(
            self.catalog
                .region_codes()
                .filter(|code| self.covers(code))
                .map(str::to_string)
                .collect(),
        )
    }

    fn describe(&self) -> String {
        if self.roots.is_empty() {
            "no region".into()
        } else {
            self.roots.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::RegionInfo;

    fn region(code: &str, parent: Option<&str>) -> RegionInfo {
        RegionInfo {
            code: code.into(),
            parent: parent.map(Into::into),
            grid_region: None,
        }
    }

    fn catalog() -> Arc<Catalog> {
        Arc::new(Catalog::new(
            vec![
                region("CN", None),
                region("440000", Some("CN")),
                region("440300", Some("440000")),
                region("420000", Some("CN")),
                region("420100", Some("420000")),
            ],
            vec![],
            vec![],
            vec![],
        ))
    }

    fn scope(grants: &[(GrantRole, &str)]) -> Scope {
        let grants: Vec<_> = grants.iter().map(|(r, c)| (*r, c.to_string())).collect();
        Scope::new(&grants, catalog())
    }

    #[test]
    fn a_province_administrator_governs_its_cities_and_nothing_else() {
        let guangdong = scope(&[(GrantRole::RegionAdmin, "440000")]);
        assert!(guangdong.covers("440000") && guangdong.covers("440300"));
        assert!(!guangdong.covers("420100") && !guangdong.covers("CN"));
        assert_eq!(
            guangdong.check("420100"),
            Err(OutOfScope::Region {
                scope: "440000".into(),
                region: "420100".into()
            })
        );
        assert!(guangdong.check_national().is_err());
        // An empty list of regions means everywhere, which only the nation covers.
        assert!(guangdong.check_all(["440300"]).is_ok());
        assert!(guangdong.check_all([]).is_err());
        assert!(guangdong.check_all(["440300", "420100"]).is_err());
        let mut codes = guangdong.region_codes().unwrap();
        codes.sort();
        assert_eq!(codes, ["440000", "440300"]);
    }

    #[test]
    fn a_national_administrator_governs_everywhere_and_no_grant_governs_nothing() {
        let nation = scope(&[(GrantRole::Admin, "CN")]);
        assert!(nation.covers("420100") && nation.check_national().is_ok());
        assert_eq!(nation.region_codes(), None);
        let none = scope(&[]);
        assert!(!none.covers("440300") && none.check_all([]).is_err());
        assert_eq!(none.region_codes(), Some(vec![]));
    }

    #[test]
    fn the_maker_of_a_change_cannot_approve_it() {
        assert_eq!(require_second_admin(Some(7), 7), Err(OwnRequest));
        assert!(require_second_admin(Some(7), 8).is_ok());
        assert!(require_second_admin(None, 8).is_ok());
    }
}
