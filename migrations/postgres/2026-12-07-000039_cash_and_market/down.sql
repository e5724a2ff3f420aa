DROP TABLE market_candles;
DROP TABLE market_trades;
DROP TABLE market_orders;
DROP TABLE cash_withdrawals;
DROP TABLE cash_deposits;
DELETE FROM accounts WHERE code IN ('cash:bank', 'cash:fees', 'market:points', 'market:cash');
ALTER TABLE accounts DROP COLUMN asset;
