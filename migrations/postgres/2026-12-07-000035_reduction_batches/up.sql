-- Pooled reductions (docs/registry.md): credited activities of a region subtree and a window, packaged as
-- a batch that goes draft ▸ submitted ▸ verified ▸ issued (whole tonnes under serial numbers).
CREATE TABLE reduction_batches (
    id             BIGSERIAL PRIMARY KEY,
    region_code    TEXT NOT NULL REFERENCES regions (code),
    -- JSON array of activity type codes; NULL: every type.
    activity_types TEXT,
    window_from    TIMESTAMP NOT NULL,
    window_to      TIMESTAMP NOT NULL,
    status         TEXT NOT NULL,
    activities     BIGINT NOT NULL,
    -- The granted grams of its activities (what their points were issued for).
    reduction_g    BIGINT NOT NULL,
    created_by     BIGINT NOT NULL REFERENCES users (id),
    created_at     TIMESTAMP NOT NULL,
    submitted_by   BIGINT REFERENCES users (id),
    submitted_at   TIMESTAMP,
    verified_by    BIGINT REFERENCES users (id),
    verified_at    TIMESTAMP,
    issued_by      BIGINT REFERENCES users (id),
    issued_at      TIMESTAMP,
    tonnes         BIGINT,
    -- Serials CN-{region_code}-{serial_year}-{n}, n from serial_first to serial_first + tonnes - 1.
    serial_year    INTEGER,
    serial_first   BIGINT,
    CHECK (window_from < window_to)
);
-- A guard beside the counter below: no two batches of a region and year start at the same serial.
CREATE UNIQUE INDEX reduction_batches_serials ON reduction_batches (region_code, serial_year, serial_first);

-- Which batch holds each activity. The activity is the primary key: an activity is in one batch, ever,
-- whatever two drafts on two instances select at once. Deleting a draft deletes its rows, freeing them.
-- No foreign keys: every row is inserted from the activities themselves, in the transaction that stores
-- its batch, and activities are never deleted; checking two foreign keys per row doubled a draft's time on
-- PostgreSQL (7 s for 172,800 activities with them, 3.6 s without; docs/registry.md).
CREATE TABLE reduction_batch_items (
    activity_id BIGINT PRIMARY KEY,
    batch_id    BIGINT NOT NULL,
    granted_g   BIGINT NOT NULL
);
-- A batch's activities in id order: its totals, its evidence, deleting a draft.
CREATE INDEX reduction_batch_items_batch ON reduction_batch_items (batch_id, activity_id);

-- The last serial number given per (region, year): raised in the transaction that issues, so numbers run
-- without gaps or duplicates on any number of instances.
CREATE TABLE reduction_serials (
    region_code TEXT NOT NULL,
    year        INTEGER NOT NULL,
    last_n      BIGINT NOT NULL,
    PRIMARY KEY (region_code, year)
);
