-- The claim registry: one owner per trip across the carbon-inclusive platforms that use it.

-- A provider's operator code (a lowercase slug): with its own trip ids it makes the trips' claims.
-- Optional, and unique among providers (NULLs are distinct: any number of providers have none).
ALTER TABLE providers ADD COLUMN code TEXT;
CREATE UNIQUE INDEX providers_code ON providers (code);

-- Peer platforms: other schemes that check and register claims with signed calls.
CREATE TABLE peers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Peers sign with keys like providers and partners. SQLite cannot change a CHECK: the table is rebuilt
-- (nothing references it).
CREATE TABLE api_keys_new (
    key_id           TEXT PRIMARY KEY,
    owner_type       TEXT NOT NULL CHECK (owner_type IN ('provider', 'partner', 'peer')),
    owner_id         BIGINT NOT NULL,
    secret_encrypted TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    revoked_at       TIMESTAMP
);
INSERT INTO api_keys_new (key_id, owner_type, owner_id, secret_encrypted, created_at, revoked_at)
    SELECT key_id, owner_type, owner_id, secret_encrypted, created_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
CREATE INDEX api_keys_owner ON api_keys (owner_type, owner_id);

-- One row per claimed trip: the key is the claim, so a claim has exactly one owner, whoever inserts it
-- first. `peer_id` NULL: Tanhui itself (one of its activities holds it). `claimed_at` is when the owner
-- says it claimed the trip; `registered_at` when the registry recorded it. WITHOUT ROWID: the key is the
-- table's own B-tree, not a rowid table beside an index of the key.
CREATE TABLE claims (
    claim_id      TEXT PRIMARY KEY,
    peer_id       BIGINT REFERENCES peers (id),
    claimed_at    TIMESTAMP NOT NULL,
    registered_at TIMESTAMP NOT NULL
) WITHOUT ROWID;

-- The claim of an activity's trip, when its provider named the trip (`trip_ref`): held by the activity
-- unless it is rejected (a rejected one may name a claim another platform holds: `already_claimed`).
ALTER TABLE activities ADD COLUMN claim_id TEXT;
