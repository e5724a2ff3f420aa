DROP TABLE lot_exits;
DROP TABLE lot_holdings;
DROP TABLE lots;
DELETE FROM accounts WHERE kind = 'sink' AND NOT EXISTS (
    SELECT 1 FROM transfers WHERE debit_account_id = accounts.id OR credit_account_id = accounts.id);
