DROP TABLE request_nonces;
DROP TABLE api_keys;
DROP TABLE providers;
DROP TABLE annual_points;
DROP TABLE daily_grants;
DROP TABLE activities;
