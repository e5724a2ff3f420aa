-- Phones are kept sealed (XChaCha20-Poly1305 under the secrets key) beside a keyed hash (HMAC-SHA256 under
-- a key derived from the secrets key) that finds and keeps them unique. The plain column becomes the hash
-- column: renaming keeps its NOT NULL and UNIQUE, so no table is rebuilt. Rows stored before this hold
-- their plain phone there with no sealed copy; start-up seals them (`accounts::phones::seal_plain`),
-- which needs the key and therefore runs in Rust, not here.
ALTER TABLE users RENAME COLUMN phone TO phone_hash;
ALTER TABLE users ADD COLUMN phone_sealed TEXT;
-- When the person erased their account: the row stays as the anonymous owner of its ledger history.
ALTER TABLE users ADD COLUMN erased_at TIMESTAMP;
-- The rows start-up still has to seal: none, once every row is sealed, so the check costs nothing.
CREATE INDEX users_unsealed_phone ON users (id) WHERE phone_sealed IS NULL AND erased_at IS NULL;
