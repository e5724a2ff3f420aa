-- Selling an issued reduction batch and settling the sale (docs/registry.md, "Sale and settlement"): one
-- administrator records the buyer, the price and the bank reference the payment will arrive under; a
-- second confirms it arrived, and the proceeds, less the platform's share, are paid as cash to the people
-- whose activities the batch holds, pro rata to their grams, in the same transaction.
ALTER TABLE reduction_batches ADD COLUMN buyer TEXT;
ALTER TABLE reduction_batches ADD COLUMN price_fen_per_tonne BIGINT;
ALTER TABLE reduction_batches ADD COLUMN proceeds_fen BIGINT;
ALTER TABLE reduction_batches ADD COLUMN bank_reference TEXT;
ALTER TABLE reduction_batches ADD COLUMN sold_by BIGINT;
ALTER TABLE reduction_batches ADD COLUMN sold_at TIMESTAMP;
-- What the platform kept (its share, and the shares of people erased since), and what went to people.
ALTER TABLE reduction_batches ADD COLUMN platform_fen BIGINT;
ALTER TABLE reduction_batches ADD COLUMN distributed_fen BIGINT;
-- The transfer of the platform's part into cash:fees; NULL when it is zero.
ALTER TABLE reduction_batches ADD COLUMN platform_transfer_id BIGINT;
ALTER TABLE reduction_batches ADD COLUMN settled_by BIGINT;
ALTER TABLE reduction_batches ADD COLUMN settled_at TIMESTAMP;
-- (The added columns name users and transfers without a REFERENCES clause: SQLite cannot drop a column
-- that has one, which the down migration does.)
-- A bank reference is accepted once: by one sale here, and (checked by the service) by no deposit.
CREATE UNIQUE INDEX reduction_batches_bank_reference ON reduction_batches (bank_reference)
    WHERE bank_reference IS NOT NULL;

-- What a settled sale paid each person: one row per (batch, wallet), so a wallet is paid once per batch.
CREATE TABLE reduction_incentives (
    batch_id        BIGINT NOT NULL REFERENCES reduction_batches (id),
    -- The points wallet whose activities the batch holds, and the cash account paid.
    account_id      BIGINT NOT NULL REFERENCES accounts (id),
    cash_account_id BIGINT NOT NULL REFERENCES accounts (id),
    granted_g       BIGINT NOT NULL CHECK (granted_g > 0),
    amount_fen      BIGINT NOT NULL CHECK (amount_fen >= 0),
    -- NULL when the share rounded to nothing.
    transfer_id     BIGINT UNIQUE REFERENCES transfers (id),
    PRIMARY KEY (batch_id, account_id),
    CHECK ((amount_fen > 0) = (transfer_id IS NOT NULL))
);
CREATE INDEX reduction_incentives_by_account ON reduction_incentives (account_id, batch_id);
