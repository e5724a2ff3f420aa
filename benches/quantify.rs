//! Quantifying one activity on the hot path: the cached catalog's version lookup (city ▸ province ▸
//! nation, effective dating) plus evaluating the parsed formula, for the seeded `transit.metro` rules.
//!
//! Run with `cargo bench --bench quantify`. The catalog is loaded from a freshly migrated SQLite
//! database, exactly as the service loads it.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tanhui::config::Settings;
use tanhui::domain::data_schema::DataValues;
use tanhui::methodology::store::load_catalog;
use tanhui::startup::open_database;

fn quantify(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::defaults();
    settings.database.url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let db = open_database(&settings).expect("database");
    let catalog = load_catalog(&mut db.get().expect("connection")).expect("catalog");

    let at = "2025-03-01T08:00:00+08:00"
        .parse::<DateTime<Utc>>()
        .expect("time")
        .naive_utc();
    let data = DataValues::from([("distance_m".to_string(), 3200.into())]);
    let mut group = c.benchmark_group("quantify");
    group.throughput(Throughput::Elements(1));
    // Beijing has no metro version of its own: the lookup walks city ▸ province ▸ nation.
    for region in ["440300", "110000"] {
        group.bench_function(format!("transit.metro/{region}"), |b| {
            b.iter(|| {
                let version = catalog
                    .version_in_force("transit.metro", black_box(region), at)
                    .expect("version");
                catalog
                    .quantify(version, region, at, black_box(&data), false)
                    .expect("quantity")
                    .reduction_g
            })
        });
    }
    group.finish();
}

criterion_group!(benches, quantify);
criterion_main!(benches);
