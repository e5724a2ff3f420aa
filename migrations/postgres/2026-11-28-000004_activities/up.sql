-- Activities: every event posted, whatever became of it (credited, capped, flagged or rejected), with the
-- methodology version and breakdown that produced its figures and the answer the client was given.
CREATE TABLE activities (
    id              BIGSERIAL PRIMARY KEY,
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
    response        TEXT NOT NULL,
    review_note     TEXT,
    reviewed_by     BIGINT REFERENCES users (id),
    reviewed_at     TIMESTAMP,
    created_at      TIMESTAMP NOT NULL,
    UNIQUE (account_id, client_event_id)
);
CREATE INDEX activities_account ON activities (account_id, id);
CREATE INDEX activities_account_time ON activities (account_id, occurred_at);
CREATE INDEX activities_status ON activities (status, id);
CREATE INDEX activities_type_time ON activities (activity_type, occurred_at);

-- Grams granted per (account, activity type, local day): the daily cap's counter. Updated with a
-- conditional UPDATE, so concurrent posts on several instances never grant past the cap.
CREATE TABLE daily_grants (
    account_id    BIGINT NOT NULL,
    activity_type TEXT NOT NULL,
    local_day     TEXT NOT NULL,
    granted_g     BIGINT NOT NULL,
    last_grant_g  BIGINT NOT NULL,
    PRIMARY KEY (account_id, activity_type, local_day)
);

-- Points granted per (account, local year), for the optional annual cap.
CREATE TABLE annual_points (
    account_id    BIGINT NOT NULL,
    year          INTEGER NOT NULL,
    points        BIGINT NOT NULL,
    last_grant    BIGINT NOT NULL,
    PRIMARY KEY (account_id, year)
);

-- Partners and data providers that sign their requests.
CREATE TABLE providers (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    region_codes TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL
);

-- Signing keys. The secret is needed to check signatures, so it is stored encrypted
-- (XChaCha20-Poly1305 under the server's secrets key), never in the clear.
CREATE TABLE api_keys (
    key_id           TEXT PRIMARY KEY,
    owner_type       TEXT NOT NULL CHECK (owner_type IN ('provider', 'partner')),
    owner_id         BIGINT NOT NULL,
    secret_encrypted TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    revoked_at       TIMESTAMP
);
CREATE INDEX api_keys_owner ON api_keys (owner_type, owner_id);

-- Request nonces seen per key, when no Redis is configured.
CREATE TABLE request_nonces (
    key_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);
