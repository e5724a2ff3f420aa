-- Counters of the short-lived cache (login throttles, binding-code allowances) while
-- Redis is configured but does not answer: every instance falls back to this one table, so the limits
-- stay shared and refusing. Rows live until `expires_at`; each write deletes the expired ones.
CREATE TABLE cache_entries (
    key        TEXT PRIMARY KEY,
    count      BIGINT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX cache_entries_expiry ON cache_entries (expires_at);
