-- Retiring an issued reduction batch instead of selling it (docs/registry.md, "Retirement of a batch"): its
-- tonnes are cancelled for good on behalf of a beneficiary, for a reason, by a second administrator than
-- the one who issued them. One row per retired batch, written with its move to `retired`: terminal, so a
-- retired batch is never sold, and a sold one never retired.
CREATE TABLE reduction_batch_retirements (
    batch_id    BIGINT PRIMARY KEY REFERENCES reduction_batches (id),
    beneficiary TEXT NOT NULL,
    reason      TEXT NOT NULL,
    retired_by  BIGINT NOT NULL REFERENCES users (id),
    retired_at  TIMESTAMP NOT NULL
);
