-- Partners (transit operators, scenic sites, green-credit banks) accept points for their services.
-- Each has a settlement account that captured redemptions are posted to. Settlement accounts are
-- derived, like issuance accounts: a popular partner's account takes part in every redemption of its
-- offers, so it is never a row that every redeeming transaction updates; `verify` derives its balance.
CREATE TABLE partners (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('transit', 'scenic', 'green_credit')),
    -- JSON array of region codes the partner serves.
    region_codes TEXT NOT NULL,
    account_id   BIGINT NOT NULL UNIQUE REFERENCES accounts (id),
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE offers (
    id             BIGSERIAL PRIMARY KEY,
    partner_id     BIGINT NOT NULL REFERENCES partners (id),
    title          TEXT NOT NULL,
    description    TEXT NOT NULL,
    points_cost    BIGINT NOT NULL CHECK (points_cost > 0),
    -- What a green-credit benefit is worth, in fen; stated on the voucher.
    value_fen      BIGINT CHECK (value_fen >= 0),
    per_user_limit BIGINT NOT NULL CHECK (per_user_limit > 0),
    valid_from     TIMESTAMP NOT NULL,
    valid_to       TIMESTAMP NOT NULL,
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    CHECK (valid_to > valid_from)
);
CREATE INDEX offers_partner ON offers (partner_id, id);

-- An offer's units left, split over up to 16 buckets. Every redemption of a popular offer takes a unit, so
-- one stock row would serialize them all on its lock until commit; a redemption takes a unit from a random
-- bucket that has one (a conditional UPDATE, stock > 0), and a void or an expiry gives it back to the
-- same bucket. The offer's stock is the sum.
CREATE TABLE offer_stock (
    offer_id BIGINT NOT NULL REFERENCES offers (id),
    bucket   BIGINT NOT NULL,
    stock    BIGINT NOT NULL CHECK (stock >= 0),
    PRIMARY KEY (offer_id, bucket)
);

-- Where an offer may be redeemed: a user whose region lies within one of these.
CREATE TABLE offer_regions (
    offer_id    BIGINT NOT NULL REFERENCES offers (id),
    region_code TEXT NOT NULL REFERENCES regions (code),
    PRIMARY KEY (offer_id, region_code)
);
CREATE INDEX offer_regions_region ON offer_regions (region_code, offer_id);

CREATE TABLE redemptions (
    id            BIGSERIAL PRIMARY KEY,
    offer_id      BIGINT NOT NULL REFERENCES offers (id),
    partner_id    BIGINT NOT NULL REFERENCES partners (id),
    account_id    BIGINT NOT NULL REFERENCES accounts (id),
    user_id       BIGINT NOT NULL REFERENCES users (id),
    points        BIGINT NOT NULL CHECK (points > 0),
    value_fen     BIGINT,
    -- held ▸ captured | voided | expired. Leaving `held` is a conditional UPDATE (status = 'held'):
    -- the one that matches wins, so capture, void and expiry resolve a redemption exactly once.
    status        TEXT NOT NULL CHECK (status IN ('held', 'captured', 'voided', 'expired')),
    -- The ledger hold (wallet → settlement account) and the transfer that resolved it.
    hold_id       BIGINT UNIQUE REFERENCES transfers (id),
    -- The stock bucket its unit came from, where a void or an expiry returns it.
    stock_bucket  BIGINT,
    resolution_id BIGINT UNIQUE REFERENCES transfers (id),
    expires_at    TIMESTAMP NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    resolved_at   TIMESTAMP,
    resolved_by   TEXT,
    CHECK ((status = 'held') = (resolved_at IS NULL))
);
CREATE INDEX redemptions_account ON redemptions (account_id, id);
CREATE INDEX redemptions_partner_resolved ON redemptions (partner_id, resolved_at);
CREATE INDEX redemptions_due ON redemptions (status, expires_at);

-- Held and captured redemptions per (offer, account): the per-user limit's counter, taken with a
-- conditional UPDATE so concurrent redemptions on several instances never pass the limit.
CREATE TABLE redemption_counts (
    offer_id   BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    active     BIGINT NOT NULL CHECK (active >= 0),
    PRIMARY KEY (offer_id, account_id)
);
