-- What a green profile is computed from, kept with the writes so that a profile reads at most one row per
-- day of the quarter instead of scanning the person's activities. One row per (account, local day of the
-- activity in Asia/Shanghai), added to whenever an activity of that day is stored or reviewed.
CREATE TABLE activity_rollups (
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    local_day  TEXT NOT NULL,
    -- Grams granted (after caps) to credited activities.
    granted_g  BIGINT NOT NULL DEFAULT 0,
    -- Activities credited or capped (accepted), and of those the ones with operator or trace evidence.
    accepted   BIGINT NOT NULL DEFAULT 0,
    verified   BIGINT NOT NULL DEFAULT 0,
    -- Activities held for review on arrival, and activities rejected (on arrival or by a reviewer).
    flagged    BIGINT NOT NULL DEFAULT 0,
    rejected   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, local_day)
);

-- The activities stored before, rolled up once.
INSERT INTO activity_rollups (account_id, local_day, granted_g, accepted, verified, flagged, rejected)
SELECT account_id, local_day,
       SUM(CASE WHEN status = 'credited' THEN granted_g ELSE 0 END),
       SUM(CASE WHEN status IN ('credited', 'capped') THEN 1 ELSE 0 END),
       SUM(CASE WHEN status IN ('credited', 'capped') AND evidence IN ('operator', 'trace') THEN 1 ELSE 0 END),
       SUM(CASE WHEN status = 'flagged' OR reviewed_at IS NOT NULL THEN 1 ELSE 0 END),
       SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END)
FROM activities
GROUP BY account_id, local_day;

-- A green-credit partner's own tier thresholds (grams granted in a quarter): light below medium_from_g,
-- deep above deep_above_g, medium between. A partner without a row reads the platform's (50 kg, 100 kg).
CREATE TABLE partner_green_tiers (
    partner_id    BIGINT PRIMARY KEY REFERENCES partners (id),
    medium_from_g BIGINT NOT NULL CHECK (medium_from_g > 0),
    deep_above_g  BIGINT NOT NULL CHECK (deep_above_g >= medium_from_g),
    updated_at    TIMESTAMP NOT NULL
);
