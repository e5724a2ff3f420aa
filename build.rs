//! The migrations are embedded in the binary (`db::migrate`); a new migration directory is no source
//! change cargo would notice, so it is told to rebuild when the directory changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
