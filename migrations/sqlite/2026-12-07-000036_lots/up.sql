-- Points lots (docs/ledger.md, "Lots"). A lot is what one issue created: its points, the grams behind
-- them, where and how they were earned, and when they expire. It is named by its issue transfer's id;
-- the opening lot of a wallet that held points before lots existed by minus the wallet's account id.
CREATE TABLE lots (
    id             INTEGER PRIMARY KEY,
    account_id     BIGINT NOT NULL REFERENCES accounts (id),
    region_code    TEXT NOT NULL,
    activity_type  TEXT,
    methodology_id BIGINT,
    points         BIGINT NOT NULL CHECK (points > 0),
    reduction_g    BIGINT NOT NULL CHECK (reduction_g >= 0),
    expires_at     TIMESTAMP NOT NULL,
    created_at     TIMESTAMP NOT NULL
);

-- Which wallet holds how many points of which lot: free (hold_id 0) or reserved by a pending hold. Keyed
-- in spending order, so the soonest-expiring points of a wallet are the first rows of its key range.
CREATE TABLE lot_holdings (
    account_id BIGINT NOT NULL,
    hold_id    BIGINT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    lot_id     BIGINT NOT NULL,
    points     BIGINT NOT NULL CHECK (points > 0),
    PRIMARY KEY (account_id, hold_id, expires_at, lot_id)
) WITHOUT ROWID;
-- The expiry sweeper's way in: free points by expiry.
CREATE INDEX lot_holdings_due ON lot_holdings (expires_at, account_id) WHERE hold_id = 0;

-- Points of a lot that left the wallets for good (captured by a partner, retired, expired), per transfer.
CREATE TABLE lot_exits (
    transfer_id BIGINT NOT NULL,
    lot_id      BIGINT NOT NULL,
    points      BIGINT NOT NULL CHECK (points > 0),
    PRIMARY KEY (transfer_id, lot_id)
) WITHOUT ROWID;

-- Where points end: expired, or retired for an offset. Derived, like issuance accounts.
INSERT INTO accounts (kind, code, region_code, floored, derived, created_at)
VALUES ('sink', 'sink:expired', NULL, 0, 1, CURRENT_TIMESTAMP),
       ('sink', 'sink:retired', NULL, 0, 1, CURRENT_TIMESTAMP);

-- Points held before lots existed: one opening lot per wallet, valid for the default 3,650 days from now,
-- its grams unknown (0). Its free part and each open hold's part are holdings of it.
INSERT INTO lots (id, account_id, region_code, activity_type, methodology_id, points, reduction_g, expires_at, created_at)
SELECT -id, id, COALESCE(region_code, 'CN'), NULL, NULL, credits_posted - debits_posted, 0,
       datetime('now', '+3650 days'), datetime('now')
FROM accounts WHERE floored AND credits_posted - debits_posted > 0;
INSERT INTO lot_holdings (account_id, hold_id, expires_at, lot_id, points)
SELECT account_id, 0, expires_at, id, points - (SELECT debits_pending FROM accounts WHERE accounts.id = lots.account_id)
FROM lots WHERE id < 0 AND points > (SELECT debits_pending FROM accounts WHERE accounts.id = lots.account_id);
INSERT INTO lot_holdings (account_id, hold_id, expires_at, lot_id, points)
SELECT t.debit_account_id, t.id, l.expires_at, l.id, t.amount
FROM pending_holds p JOIN transfers t ON t.id = p.hold_id JOIN lots l ON l.id = -t.debit_account_id;
