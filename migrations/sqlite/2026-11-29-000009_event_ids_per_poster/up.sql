-- A `client_event_id` is the idempotency key of whoever posted the event, so it is unique per account and
-- poster: the account's own app (no provider) or one data provider. Unique per account alone, an
-- operator reusing an id the app had used (an order number, say) was answered with the app's record, or
-- refused, and its own record of the trip was never stored. SQLite cannot drop a table's UNIQUE clause,
-- so the table is rebuilt (nothing references it), with the same columns and indexes.
CREATE TABLE activities_rebuilt (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      BIGINT NOT NULL REFERENCES accounts (id),
    user_id         BIGINT NOT NULL REFERENCES users (id),
    client_event_id TEXT NOT NULL,
    -- Digest of the request, so a replay with a different body is told apart.
    request_hash    TEXT NOT NULL,
    activity_type   TEXT NOT NULL REFERENCES activity_types (code),
    region_code     TEXT NOT NULL REFERENCES regions (code),
    occurred_at     TIMESTAMP NOT NULL,
    ended_at        TIMESTAMP,
    -- Asia/Shanghai calendar date of occurred_at (YYYY-MM-DD): the daily cap's day.
    local_day       TEXT NOT NULL,
    evidence        TEXT NOT NULL CHECK (evidence IN ('operator', 'trace', 'photo', 'self_report')),
    provider_id     BIGINT,
    data            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('credited', 'capped', 'flagged', 'rejected')),
    reasons         TEXT NOT NULL,
    methodology_id  BIGINT REFERENCES methodology_versions (id),
    reduction_g     BIGINT NOT NULL DEFAULT 0,
    granted_g       BIGINT NOT NULL DEFAULT 0,
    points          BIGINT NOT NULL DEFAULT 0,
    breakdown       TEXT,
    transfer_id     BIGINT REFERENCES transfers (id),
    review_note     TEXT,
    reviewed_by     BIGINT REFERENCES users (id),
    reviewed_at     TIMESTAMP,
    created_at      TIMESTAMP NOT NULL
);
INSERT INTO activities_rebuilt (id, account_id, user_id, client_event_id, request_hash, activity_type,
    region_code, occurred_at, ended_at, local_day, evidence, provider_id, data, status, reasons,
    methodology_id, reduction_g, granted_g, points, breakdown, transfer_id, review_note, reviewed_by,
    reviewed_at, created_at)
SELECT id, account_id, user_id, client_event_id, request_hash, activity_type,
    region_code, occurred_at, ended_at, local_day, evidence, provider_id, data, status, reasons,
    methodology_id, reduction_g, granted_g, points, breakdown, transfer_id, review_note, reviewed_by,
    reviewed_at, created_at
FROM activities;
DROP TABLE activities;
ALTER TABLE activities_rebuilt RENAME TO activities;
CREATE INDEX activities_account ON activities (account_id, id);
CREATE INDEX activities_account_time ON activities (account_id, occurred_at);
CREATE INDEX activities_type_time ON activities (activity_type, occurred_at);
CREATE INDEX activities_flagged ON activities (id) WHERE status = 'flagged';
-- The poster last: lookups by (account, client_event_id) use the index's prefix, and read each poster's
-- record of that id.
CREATE UNIQUE INDEX activities_event ON activities (account_id, client_event_id, COALESCE(provider_id, 0));
