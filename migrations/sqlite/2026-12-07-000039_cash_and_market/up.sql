-- Cash and the market (docs/market.md). Cash is a second asset on the same ledger: an account holds
-- either points or CNY fen, and a transfer moves one asset between two accounts of it.
ALTER TABLE accounts ADD COLUMN asset TEXT NOT NULL DEFAULT 'points' CHECK (asset IN ('points', 'cny'));

-- The bank account where deposited money is kept (derived: its balance is minus the money in the
-- platform), the market's fee income, and the two accounts order holds name as their credit side (holds
-- on them are only ever voided: a fill moves points and cash between the traders' own accounts).
INSERT INTO accounts (kind, code, region_code, floored, derived, asset, created_at)
VALUES ('bank', 'cash:bank', NULL, 0, 1, 'cny', CURRENT_TIMESTAMP),
       ('fees', 'cash:fees', NULL, 1, 0, 'cny', CURRENT_TIMESTAMP),
       ('market', 'market:points', NULL, 0, 1, 'points', CURRENT_TIMESTAMP),
       ('market', 'market:cash', NULL, 0, 1, 'cny', CURRENT_TIMESTAMP);

-- Money entering: one administrator records a bank deposit, another confirms it; a bank reference once.
CREATE TABLE cash_deposits (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     BIGINT NOT NULL REFERENCES accounts (id),
    amount_fen     BIGINT NOT NULL CHECK (amount_fen > 0),
    bank_reference TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'posted')),
    recorded_by    BIGINT NOT NULL,
    confirmed_by   BIGINT,
    transfer_id    BIGINT UNIQUE REFERENCES transfers (id),
    created_at     TIMESTAMP NOT NULL,
    confirmed_at   TIMESTAMP,
    CHECK ((status = 'posted') = (transfer_id IS NOT NULL))
);
CREATE INDEX cash_deposits_by_account ON cash_deposits (account_id, id);

-- Money leaving: held when asked for, then completed (paid out) or rejected (released) by an admin.
CREATE TABLE cash_withdrawals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    amount_fen  BIGINT NOT NULL CHECK (amount_fen > 0),
    status      TEXT NOT NULL CHECK (status IN ('held', 'completed', 'rejected')),
    hold_id     BIGINT UNIQUE REFERENCES transfers (id),
    resolved_by BIGINT,
    created_at  TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP
);
CREATE INDEX cash_withdrawals_by_account ON cash_withdrawals (account_id, id);

-- Limit orders. `hold_id` is the order's current hold (the seller's points or the buyer's cash for what
-- remains), none once nothing remains open.
CREATE TABLE market_orders (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id         BIGINT NOT NULL REFERENCES accounts (id),
    cash_account_id    BIGINT NOT NULL REFERENCES accounts (id),
    side               TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    price_fen_per_1000 BIGINT NOT NULL CHECK (price_fen_per_1000 > 0),
    points             BIGINT NOT NULL CHECK (points > 0 AND points % 1000 = 0),
    filled_points      BIGINT NOT NULL CHECK (filled_points >= 0 AND filled_points <= points AND filled_points % 1000 = 0),
    status             TEXT NOT NULL CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled')),
    time_in_force      TEXT NOT NULL CHECK (time_in_force IN ('gtc', 'ioc')),
    hold_id            BIGINT REFERENCES transfers (id),
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
-- The book: open orders of a side in price order, then time (id) order.
CREATE INDEX market_orders_book ON market_orders (side, price_fen_per_1000, id)
    WHERE status IN ('open', 'partially_filled');
CREATE INDEX market_orders_by_account ON market_orders (account_id, id);

-- One row per fill: the resting order's price; the buyer paid cash_fen, of which fee_fen went to fees.
CREATE TABLE market_trades (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    buy_order_id       BIGINT NOT NULL REFERENCES market_orders (id),
    sell_order_id      BIGINT NOT NULL REFERENCES market_orders (id),
    taker_side         TEXT NOT NULL CHECK (taker_side IN ('buy', 'sell')),
    points             BIGINT NOT NULL CHECK (points > 0 AND points % 1000 = 0),
    price_fen_per_1000 BIGINT NOT NULL CHECK (price_fen_per_1000 > 0),
    cash_fen           BIGINT NOT NULL CHECK (cash_fen > 0),
    fee_fen            BIGINT NOT NULL CHECK (fee_fen >= 0 AND fee_fen <= cash_fen),
    at                 TIMESTAMP NOT NULL
);
CREATE INDEX market_trades_by_buy ON market_trades (buy_order_id);
CREATE INDEX market_trades_by_sell ON market_trades (sell_order_id);

-- Hourly and daily candles, kept by the fills that make them (so a chart reads a few rows).
CREATE TABLE market_candles (
    period        TEXT NOT NULL CHECK (period IN ('1h', '1d')),
    bucket        TIMESTAMP NOT NULL,
    open_price    BIGINT NOT NULL,
    high_price    BIGINT NOT NULL,
    low_price     BIGINT NOT NULL,
    close_price   BIGINT NOT NULL,
    volume_points BIGINT NOT NULL,
    volume_fen    BIGINT NOT NULL,
    trades        BIGINT NOT NULL,
    PRIMARY KEY (period, bucket)
);
