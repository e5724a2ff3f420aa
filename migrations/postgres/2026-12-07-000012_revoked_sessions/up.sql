-- Every authenticated request asks whether its session (refresh-token family) was revoked. This index
-- holds only revoked tokens, so the question is one probe whatever the length of a live family.
CREATE INDEX refresh_tokens_revoked_family ON refresh_tokens (family_id) WHERE revoked_at IS NOT NULL;
