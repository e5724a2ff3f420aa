-- The ledger (after TigerBeetle). Transfers are immutable; a correction is a new transfer.
--
-- Hot accounts: a region's issuance account takes part in every issuance there and has no floor, so its
-- row is never updated (one row updated by every issuing transaction serializes all issuance on one lock).
-- Accounts marked `derived` keep zeros in their balance columns; their balances are the sums of their
-- transfers, which `tanhui verify` recomputes like every other balance.
ALTER TABLE accounts ADD COLUMN derived BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE transfers (
    id                BIGSERIAL PRIMARY KEY,
    kind              TEXT NOT NULL CHECK (kind IN ('issue', 'transfer', 'hold', 'post', 'void', 'expire', 'reverse', 'retire')),
    debit_account_id  BIGINT NOT NULL REFERENCES accounts (id),
    credit_account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount            BIGINT NOT NULL CHECK (amount > 0),
    -- For post, void and expire: the hold they resolve. UNIQUE: a hold is resolved at most once.
    pending_id        BIGINT UNIQUE REFERENCES transfers (id),
    -- For holds: when the expiry sweeper returns the points.
    timeout_at        TIMESTAMP,
    -- What caused it: ('activity', id), ('redemption', id), ('memo', NULL)…
    ref_type          TEXT,
    ref_id            TEXT,
    memo              TEXT,
    created_at        TIMESTAMP NOT NULL,
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((kind IN ('post', 'void', 'expire')) = (pending_id IS NOT NULL)),
    CHECK ((kind = 'hold') = (timeout_at IS NOT NULL))
);
CREATE INDEX transfers_debit ON transfers (debit_account_id, id);
CREATE INDEX transfers_credit ON transfers (credit_account_id, id);
CREATE INDEX transfers_ref ON transfers (ref_type, ref_id);

-- Holds not yet posted, voided or expired. Resolving a hold deletes its row: the one DELETE that finds it
-- wins, so post, void and expiry racing on any number of instances resolve a hold exactly once.
CREATE TABLE pending_holds (
    hold_id    BIGINT PRIMARY KEY REFERENCES transfers (id),
    timeout_at TIMESTAMP NOT NULL
);
CREATE INDEX pending_holds_timeout ON pending_holds (timeout_at);

-- Transfers committed but not yet sealed into a block. The sealer reads only committed rows, so a
-- transaction that commits late (ids are handed out before commit on PostgreSQL) lands in a later block.
CREATE TABLE unsealed_transfers (
    transfer_id BIGINT PRIMARY KEY
);

CREATE TABLE ledger_blocks (
    height         BIGINT PRIMARY KEY,
    prev_hash      TEXT NOT NULL,
    merkle_root    TEXT NOT NULL,
    hash           TEXT NOT NULL,
    transfer_count BIGINT NOT NULL,
    sealed_at      TIMESTAMP NOT NULL,
    signature      TEXT NOT NULL
);

-- Block membership, recorded explicitly. No foreign key to transfers: a deleted transfer must show up
-- in `verify` as a missing leaf, not be hidden by the database.
CREATE TABLE block_transfers (
    transfer_id  BIGINT PRIMARY KEY,
    block_height BIGINT NOT NULL REFERENCES ledger_blocks (height),
    leaf_index   BIGINT NOT NULL,
    UNIQUE (block_height, leaf_index)
);

-- Idempotency keys of value-moving requests, per caller: the request's digest and the answer given.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status          INTEGER NOT NULL,
    response        TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

-- One issuance account per region (derived, unfloored).
INSERT INTO accounts (kind, code, region_code, floored, derived, created_at)
SELECT 'issuance', 'issuance:' || code, code, FALSE, TRUE, '2026-11-28 00:00:00' FROM regions;
