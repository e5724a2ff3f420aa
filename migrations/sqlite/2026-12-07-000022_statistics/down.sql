DROP TABLE stats_month_accounts;
DROP TABLE stats_day_accounts;
DROP TABLE stats_months;
DROP TABLE stats_days;
