-- Region parameters as effective-dated versions (draft ▸ active), maker-checker like methodologies. A
-- version holds its region's own values (name → decimal text, JSON) from effective_from until the next
-- active version of the same region; a name it leaves out is inherited from the parent region. Versions are
-- only activated to start in the future and never retired, so the values in force at a past instant never
-- change.
CREATE TABLE region_parameter_versions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    region_code      TEXT NOT NULL REFERENCES regions (code),
    status           TEXT NOT NULL CHECK (status IN ('draft', 'active')),
    effective_from   TIMESTAMP NOT NULL,
    parameter_values TEXT NOT NULL,
    citation         TEXT NOT NULL DEFAULT '',
    drafted_by       BIGINT REFERENCES users (id),
    approved_by      BIGINT REFERENCES users (id),
    created_at       TIMESTAMP NOT NULL,
    activated_at     TIMESTAMP
);
CREATE INDEX region_parameter_versions_region ON region_parameter_versions (region_code, id);

-- Today's rates become active versions in force since long before any activity, so nothing earns
-- differently: the nation's (its column, else the default of 1 point per gram) with the contract's
-- defaults for points' validity and trading, then every other region that had a rate of its own.
INSERT INTO region_parameter_versions
    (region_code, status, effective_from, parameter_values, citation, created_at, activated_at)
SELECT 'CN', 'active', '2000-01-01 00:00:00',
       '{"points_per_gram":"' || COALESCE(points_per_gram, '1') || '","points_validity_days":"3650","trading_enabled":"1"}',
       'Defaults before region parameters were versioned', '2026-12-07 00:00:00', '2026-12-07 00:00:00'
FROM regions WHERE code = 'CN';
INSERT INTO region_parameter_versions
    (region_code, status, effective_from, parameter_values, citation, created_at, activated_at)
SELECT code, 'active', '2000-01-01 00:00:00', '{"points_per_gram":"' || points_per_gram || '"}',
       'Rate before region parameters were versioned', '2026-12-07 00:00:00', '2026-12-07 00:00:00'
FROM regions WHERE code <> 'CN' AND points_per_gram IS NOT NULL ORDER BY code;

ALTER TABLE regions DROP COLUMN points_per_gram;

-- The most specific region-parameter version in force for the activity's region at its occurred_at (NULL
-- for rows stored before versions, and for activities never quantified). No REFERENCES here: SQLite
-- cannot drop a column that has one, so the down migration could not undo it; the ids come from the
-- catalog of active versions, which are never deleted.
ALTER TABLE activities ADD COLUMN region_parameters_id BIGINT;
