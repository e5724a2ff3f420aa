-- Administration by region: who governs what. An administrator's scope is the union of its live grants:
-- `admin` (national, always on CN) or `region_admin` (a region and everything under it). A grant is never
-- deleted, only revoked, so the audit trail and past approvals keep the scope they were made under.
CREATE TABLE role_grants (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL,
    region_code TEXT NOT NULL REFERENCES regions (code),
    granted_by  BIGINT REFERENCES users (id),
    created_at  TIMESTAMP NOT NULL,
    revoked_by  BIGINT REFERENCES users (id),
    revoked_at  TIMESTAMP
);
-- Every admin request reads its caller's live grants; a grant is held at most once.
CREATE UNIQUE INDEX role_grants_live ON role_grants (user_id, role, region_code) WHERE revoked_at IS NULL;

-- Administrators created before scopes existed were national.
INSERT INTO role_grants (user_id, role, region_code, created_at)
SELECT id, 'admin', 'CN', created_at FROM users WHERE is_admin;
