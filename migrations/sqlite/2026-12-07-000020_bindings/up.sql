-- Bindings: a person links an operator's own reference (a metro card, a bike-share account) to their
-- account with a one-time code, and the operator then posts by that reference.

-- A code is shown once to the person; only its SHA-256 is kept. Single use, ten minutes.
CREATE TABLE binding_codes (
    code_hash   TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    provider_id BIGINT NOT NULL REFERENCES providers (id),
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP,
    created_at  TIMESTAMP NOT NULL
);
-- Counting a person's live codes, and sweeping expired ones.
CREATE INDEX binding_codes_user ON binding_codes (user_id, expires_at);
CREATE INDEX binding_codes_expiry ON binding_codes (expires_at);

CREATE TABLE bindings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    provider_id  BIGINT NOT NULL REFERENCES providers (id),
    external_ref TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    removed_at   TIMESTAMP
);
-- One live person per (operator, reference): every post by reference resolves through this index.
CREATE UNIQUE INDEX bindings_live_ref ON bindings (provider_id, external_ref) WHERE removed_at IS NULL;
CREATE INDEX bindings_user ON bindings (user_id, id);
