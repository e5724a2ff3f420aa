DROP INDEX lot_holdings_due;
CREATE INDEX lot_holdings_due ON lot_holdings (expires_at, account_id) WHERE hold_id = 0;
