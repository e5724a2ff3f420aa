-- The tables as they were: a rowid beside each key.
CREATE TABLE unsealed_transfers_new (
    transfer_id BIGINT PRIMARY KEY
);
INSERT INTO unsealed_transfers_new SELECT transfer_id FROM unsealed_transfers;
DROP TABLE unsealed_transfers;
ALTER TABLE unsealed_transfers_new RENAME TO unsealed_transfers;

CREATE TABLE block_transfers_new (
    transfer_id  BIGINT PRIMARY KEY,
    block_height BIGINT NOT NULL REFERENCES ledger_blocks (height),
    leaf_index   BIGINT NOT NULL,
    UNIQUE (block_height, leaf_index)
);
INSERT INTO block_transfers_new SELECT transfer_id, block_height, leaf_index FROM block_transfers;
DROP TABLE block_transfers;
ALTER TABLE block_transfers_new RENAME TO block_transfers;

CREATE TABLE pending_holds_new (
    hold_id    BIGINT PRIMARY KEY REFERENCES transfers (id),
    timeout_at TIMESTAMP NOT NULL
);
INSERT INTO pending_holds_new SELECT hold_id, timeout_at FROM pending_holds;
DROP TABLE pending_holds;
ALTER TABLE pending_holds_new RENAME TO pending_holds;
CREATE INDEX pending_holds_timeout ON pending_holds (timeout_at);

CREATE TABLE daily_grants_new (
    account_id    BIGINT NOT NULL,
    activity_type TEXT NOT NULL,
    local_day     TEXT NOT NULL,
    granted_g     BIGINT NOT NULL,
    last_grant_g  BIGINT NOT NULL,
    PRIMARY KEY (account_id, activity_type, local_day)
);
INSERT INTO daily_grants_new
SELECT account_id, activity_type, local_day, granted_g, last_grant_g FROM daily_grants;
DROP TABLE daily_grants;
ALTER TABLE daily_grants_new RENAME TO daily_grants;

CREATE TABLE annual_points_new (
    account_id    BIGINT NOT NULL,
    year          INTEGER NOT NULL,
    points        BIGINT NOT NULL,
    last_grant    BIGINT NOT NULL,
    PRIMARY KEY (account_id, year)
);
INSERT INTO annual_points_new SELECT account_id, year, points, last_grant FROM annual_points;
DROP TABLE annual_points;
ALTER TABLE annual_points_new RENAME TO annual_points;

CREATE TABLE idempotency_keys_new (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status          INTEGER NOT NULL,
    response        TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
INSERT INTO idempotency_keys_new
SELECT scope, idempotency_key, request_hash, status, response, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_new RENAME TO idempotency_keys;

CREATE TABLE request_nonces_new (
    key_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
INSERT INTO request_nonces_new SELECT key_id, nonce, expires_at FROM request_nonces;
DROP TABLE request_nonces;
ALTER TABLE request_nonces_new RENAME TO request_nonces;
CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);

CREATE TABLE redemption_counts_new (
    offer_id   BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    active     BIGINT NOT NULL CHECK (active >= 0),
    PRIMARY KEY (offer_id, account_id)
);
INSERT INTO redemption_counts_new SELECT offer_id, account_id, active FROM redemption_counts;
DROP TABLE redemption_counts;
ALTER TABLE redemption_counts_new RENAME TO redemption_counts;

CREATE TABLE offer_stock_new (
    offer_id BIGINT NOT NULL REFERENCES offers (id),
    bucket   BIGINT NOT NULL,
    stock    BIGINT NOT NULL CHECK (stock >= 0),
    PRIMARY KEY (offer_id, bucket)
);
INSERT INTO offer_stock_new SELECT offer_id, bucket, stock FROM offer_stock;
DROP TABLE offer_stock;
ALTER TABLE offer_stock_new RENAME TO offer_stock;
