-- A lot's expiry is an `expire` transfer that resolves no hold (docs/ledger.md, "Lots"): `pending_id` is
-- now required of `post` and `void` only, and still allowed on nothing but the three that resolve holds.
-- SQLite cannot change a CHECK in place: the table is rebuilt (the documented twelve steps), with the
-- foreign keys that point at it switched off meanwhile and checked before the commit.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE transfers_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    kind              TEXT NOT NULL CHECK (kind IN ('issue', 'transfer', 'hold', 'post', 'void', 'expire', 'reverse', 'retire')),
    debit_account_id  BIGINT NOT NULL REFERENCES accounts (id),
    credit_account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount            BIGINT NOT NULL CHECK (amount > 0),
    -- For post, void and the expiry of a hold: the hold they resolve. UNIQUE: a hold is resolved at most once.
    pending_id        BIGINT UNIQUE REFERENCES transfers (id),
    -- For holds: when the expiry sweeper returns the points.
    timeout_at        TIMESTAMP,
    -- What caused it: ('activity', id), ('redemption', id), ('memo', NULL)…
    ref_type          TEXT,
    ref_id            TEXT,
    memo              TEXT,
    created_at        TIMESTAMP NOT NULL,
    CHECK (debit_account_id <> credit_account_id),
    CHECK (pending_id IS NOT NULL OR kind NOT IN ('post', 'void')),
    CHECK (pending_id IS NULL OR kind IN ('post', 'void', 'expire')),
    CHECK ((kind = 'hold') = (timeout_at IS NOT NULL))
);
INSERT INTO transfers_new (id, kind, debit_account_id, credit_account_id, amount, pending_id, timeout_at,
                           ref_type, ref_id, memo, created_at)
SELECT id, kind, debit_account_id, credit_account_id, amount, pending_id, timeout_at,
       ref_type, ref_id, memo, created_at
FROM transfers;
DROP TABLE transfers;
ALTER TABLE transfers_new RENAME TO transfers;
CREATE INDEX transfers_debit ON transfers (debit_account_id, id);
CREATE INDEX transfers_credit ON transfers (credit_account_id, id);
COMMIT;
PRAGMA foreign_keys = ON;
