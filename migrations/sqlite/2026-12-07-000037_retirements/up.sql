-- Retirements: points taken out of circulation for good, for a named beneficiary (docs/registry.md).
-- The transfer to `sink:retired` moved the points; its lot exits name the grams behind them.
CREATE TABLE retirements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    serial      TEXT UNIQUE,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    transfer_id BIGINT UNIQUE REFERENCES transfers (id),
    points      BIGINT NOT NULL CHECK (points > 0),
    reduction_g BIGINT NOT NULL CHECK (reduction_g >= 0),
    beneficiary TEXT NOT NULL,
    reason      TEXT NOT NULL,
    period_from TEXT,
    period_to   TEXT,
    retired_at  TIMESTAMP NOT NULL
);
CREATE INDEX retirements_by_account ON retirements (account_id, id);
