-- The claim registry: one owner per trip across the carbon-inclusive platforms that use it.

-- A provider's operator code (a lowercase slug): with its own trip ids it makes the trips' claims.
-- Optional, and unique among providers (NULLs are distinct: any number of providers have none).
ALTER TABLE providers ADD COLUMN code TEXT;
CREATE UNIQUE INDEX providers_code ON providers (code);

-- Peer platforms: other schemes that check and register claims with signed calls.
CREATE TABLE peers (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Peers sign with keys like providers and partners.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_owner_type_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_owner_type_check
    CHECK (owner_type IN ('provider', 'partner', 'peer'));

-- One row per claimed trip: the key is the claim, so a claim has exactly one owner, whoever inserts it
-- first. `peer_id` NULL: Tanhui itself (one of its activities holds it). `claimed_at` is when the owner
-- says it claimed the trip; `registered_at` when the registry recorded it.
CREATE TABLE claims (
    claim_id      TEXT PRIMARY KEY,
    peer_id       BIGINT REFERENCES peers (id),
    claimed_at    TIMESTAMP NOT NULL,
    registered_at TIMESTAMP NOT NULL
);

-- The claim of an activity's trip, when its provider named the trip (`trip_ref`): held by the activity
-- unless it is rejected (a rejected one may name a claim another platform holds: `already_claimed`).
ALTER TABLE activities ADD COLUMN claim_id TEXT;
