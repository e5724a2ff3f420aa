-- A person's grant of scopes to one green-credit partner until a date. Partners' reads check the row on
-- every read (no cache), so a revocation or an expiry stops the next read on every instance.
CREATE TABLE consents (
    id         TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    partner_id BIGINT NOT NULL REFERENCES partners (id),
    -- JSON array of scopes.
    scopes     TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX consents_user ON consents (user_id, created_at);

-- Every read a partner made under a consent.
CREATE TABLE consent_accesses (
    id         BIGSERIAL PRIMARY KEY,
    consent_id TEXT NOT NULL REFERENCES consents (id),
    partner_id BIGINT NOT NULL REFERENCES partners (id),
    scope      TEXT NOT NULL,
    at         TIMESTAMP NOT NULL
);
CREATE INDEX consent_accesses_consent ON consent_accesses (consent_id, id);

-- How far each retention sweep that walks a table by id has come (`activity_data`: the last activity whose
-- raw data was reduced), so a sweep reads only rows it has not seen.
CREATE TABLE retention_marks (
    name    TEXT PRIMARY KEY,
    last_id BIGINT NOT NULL
);
