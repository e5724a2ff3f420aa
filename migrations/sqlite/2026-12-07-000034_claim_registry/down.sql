ALTER TABLE activities DROP COLUMN claim_id;
DROP TABLE claims;
CREATE TABLE api_keys_old (
    key_id           TEXT PRIMARY KEY,
    owner_type       TEXT NOT NULL CHECK (owner_type IN ('provider', 'partner')),
    owner_id         BIGINT NOT NULL,
    secret_encrypted TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    revoked_at       TIMESTAMP
);
INSERT INTO api_keys_old (key_id, owner_type, owner_id, secret_encrypted, created_at, revoked_at)
    SELECT key_id, owner_type, owner_id, secret_encrypted, created_at, revoked_at FROM api_keys
    WHERE owner_type <> 'peer';
DROP TABLE api_keys;
ALTER TABLE api_keys_old RENAME TO api_keys;
CREATE INDEX api_keys_owner ON api_keys (owner_type, owner_id);
DROP TABLE peers;
DROP INDEX providers_code;
ALTER TABLE providers DROP COLUMN code;
