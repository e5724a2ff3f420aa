DELETE FROM accounts WHERE kind = 'issuance';
DROP TABLE idempotency_keys;
DROP TABLE block_transfers;
DROP TABLE ledger_blocks;
DROP TABLE unsealed_transfers;
DROP TABLE pending_holds;
DROP TABLE transfers;
ALTER TABLE accounts DROP COLUMN derived;
