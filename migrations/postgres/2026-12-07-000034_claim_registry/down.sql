ALTER TABLE activities DROP COLUMN claim_id;
DROP TABLE claims;
DELETE FROM api_keys WHERE owner_type = 'peer';
ALTER TABLE api_keys DROP CONSTRAINT api_keys_owner_type_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_owner_type_check CHECK (owner_type IN ('provider', 'partner'));
DROP TABLE peers;
DROP INDEX providers_code;
ALTER TABLE providers DROP COLUMN code;
