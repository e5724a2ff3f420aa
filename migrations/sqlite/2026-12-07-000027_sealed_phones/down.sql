DROP INDEX users_unsealed_phone;
ALTER TABLE users DROP COLUMN erased_at;
ALTER TABLE users DROP COLUMN phone_sealed;
ALTER TABLE users RENAME COLUMN phone_hash TO phone;
