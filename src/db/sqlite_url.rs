/// The file path of a `sqlite://PATH` URL: `sqlite://data/x.db` is relative to the working directory,
/// `sqlite:///var/lib/x.db` is absolute.
pub fn sqlite_path(url: &str) -> Result<String, String> {
    let path = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| "must start with sqlite://".to_string())?;
    if path.is_empty() {
        return Err("sqlite:// needs a file path".into());
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_paths() {
        assert_eq!(sqlite_path("sqlite://data/tanhui.db").unwrap(), "data/tanhui.db");
        assert_eq!(sqlite_path("sqlite:///var/lib/t.db").unwrap(), "/var/lib/t.db");
        assert!(sqlite_path("sqlite://").is_err());
        assert!(sqlite_path("postgres://x").is_err());
    }
}
