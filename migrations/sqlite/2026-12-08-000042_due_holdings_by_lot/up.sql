-- The expiry sweeper's index, keyed (expiry, lot, account) instead of (expiry, account): every holding an
-- issue creates expires at the end of the same local day, so under (expiry, account) a group of credits
-- for many people landed on as many pages of the index as it had people, each written again at commit;
-- its newest lot comes last under (expiry, lot), so a group's new holdings are appended to the index's
-- last page (docs/ledger.md, "Lots"). The sweeper reads it as before: free holdings in expiry order.
DROP INDEX lot_holdings_due;
CREATE INDEX lot_holdings_due ON lot_holdings (expires_at, lot_id, account_id) WHERE hold_id = 0;
