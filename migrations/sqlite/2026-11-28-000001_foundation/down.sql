DROP TABLE audit_log;
DROP TABLE platform_keys;
DROP TABLE refresh_tokens;
DROP TABLE users;
DROP TABLE accounts;
DROP TABLE regions;
