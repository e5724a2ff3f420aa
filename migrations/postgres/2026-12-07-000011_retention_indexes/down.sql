DROP INDEX refresh_tokens_revoked;
DROP INDEX refresh_tokens_expiry;
DROP INDEX idempotency_keys_created;
