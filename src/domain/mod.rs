//! Pure logic: no database, no HTTP.

pub mod account;
pub mod catalog;
pub mod claim;
pub mod credit_code;
pub mod data_schema;
pub mod formula;
pub mod green;
pub mod phone;
pub mod region_parameters;

/// One input field that is wrong, and why: domain checks report these, and the edge answers them.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    /// The domain is pure: it reaches no HTTP, no database and no other module of the crate (except
    /// `text_enum!`, which declares its states).
    #[test]
    fn the_domain_depends_on_nothing_of_the_application() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let whole = std::fs::read_to_string(&path).unwrap();
            let source = whole.split("#[cfg(test)]").next().unwrap_or_default();
            for forbidden in ["actix", "diesel"] {
                assert!(!source.contains(forbidden), "{} uses {forbidden}", path.display());
            }
            for (at, _) in source.match_indices("crate::") {
                assert!(
                    source[at..].starts_with("crate::text_enum!"),
                    "{} reaches {}",
                    path.display(),
                    &source[at..source[at..].find(';').map_or(source.len(), |e| at + e)]
                );
            }
        }
    }
}
