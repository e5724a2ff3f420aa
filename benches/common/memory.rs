//! Resident memory, printed beside every figure the benches give.

/// This process's resident memory now and at its peak. A bench that runs the service in its own process
/// measures the service and the load generator together; PostgreSQL's own memory is its server's.
pub fn resident_memory() -> String {
    resident_memory_of("self")
}

/// The resident memory (`VmRSS`) and its peak (`VmHWM`) of the process `pid` ("self" for this one).
pub fn resident_memory_of(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or("?".to_string(), |kib| (kib / 1024).to_string())
    };
    format!("rss={}MiB peak={}MiB", mib("VmRSS:"), mib("VmHWM:"))
}
