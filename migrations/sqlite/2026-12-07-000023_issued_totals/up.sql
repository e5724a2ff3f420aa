-- A wallet keeps the points ever issued to it beside its other totals, raised in the transaction of each
-- issue transfer, so that reading a wallet no longer sums its history (`tanhui verify` re-derives it).
-- Derived accounts (issuance, settlement) keep no totals in their row: theirs stays 0.
ALTER TABLE accounts ADD COLUMN issued_posted BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET issued_posted = issued.total
FROM (
    SELECT credit_account_id AS id, CAST(SUM(amount) AS BIGINT) AS total
    FROM transfers WHERE kind = 'issue' GROUP BY credit_account_id
) AS issued
WHERE accounts.id = issued.id AND accounts.derived = FALSE;
