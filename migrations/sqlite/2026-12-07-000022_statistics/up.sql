-- Rollups behind the public statistics (see docs/statistics.md). They count what was granted: activities
-- stored credited or capped. Each is kept in the transaction that credits (group commit, review approval),
-- so a rollup never disagrees with the activities it sums, and a crash keeps or loses both.

-- Sums per (Asia/Shanghai day, region, activity type), and the same per month: a window reads one row
-- per (period, region, type), never the activities.
CREATE TABLE stats_days (
    local_day     TEXT NOT NULL,
    region_code   TEXT NOT NULL,
    activity_type TEXT NOT NULL,
    granted_g     BIGINT NOT NULL,
    reduction_g   BIGINT NOT NULL,
    points        BIGINT NOT NULL,
    activities    BIGINT NOT NULL,
    PRIMARY KEY (local_day, region_code, activity_type)
) WITHOUT ROWID;
CREATE TABLE stats_months (
    month         TEXT NOT NULL,
    region_code   TEXT NOT NULL,
    activity_type TEXT NOT NULL,
    granted_g     BIGINT NOT NULL,
    reduction_g   BIGINT NOT NULL,
    points        BIGINT NOT NULL,
    activities    BIGINT NOT NULL,
    PRIMARY KEY (month, region_code, activity_type)
) WITHOUT ROWID;

-- Which accounts had a counted activity per (day, region, type) and per (month, region, type): distinct
-- accounts are not additive, so exact counts over a window are counted from these sets.
CREATE TABLE stats_day_accounts (
    local_day     TEXT NOT NULL,
    region_code   TEXT NOT NULL,
    activity_type TEXT NOT NULL,
    account_id    BIGINT NOT NULL,
    PRIMARY KEY (local_day, region_code, activity_type, account_id)
) WITHOUT ROWID;
CREATE TABLE stats_month_accounts (
    month         TEXT NOT NULL,
    region_code   TEXT NOT NULL,
    activity_type TEXT NOT NULL,
    account_id    BIGINT NOT NULL,
    PRIMARY KEY (month, region_code, activity_type, account_id)
) WITHOUT ROWID;

-- What was granted before these tables existed.
INSERT INTO stats_days
SELECT local_day, region_code, activity_type, SUM(granted_g), SUM(reduction_g), SUM(points), COUNT(*)
FROM activities WHERE status IN ('credited', 'capped')
GROUP BY local_day, region_code, activity_type;
INSERT INTO stats_months
SELECT substr(local_day, 1, 7), region_code, activity_type,
       SUM(granted_g), SUM(reduction_g), SUM(points), SUM(activities)
FROM stats_days GROUP BY substr(local_day, 1, 7), region_code, activity_type;
INSERT INTO stats_day_accounts
SELECT DISTINCT local_day, region_code, activity_type, account_id
FROM activities WHERE status IN ('credited', 'capped');
INSERT INTO stats_month_accounts
SELECT DISTINCT substr(local_day, 1, 7), region_code, activity_type, account_id
FROM stats_day_accounts;
