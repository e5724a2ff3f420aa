-- Every instance reads the sessions revoked since its last read, four times a second. This index holds
-- only revoked tokens, by revocation time, so each read is one short range scan.
CREATE INDEX refresh_tokens_revoked_at ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
