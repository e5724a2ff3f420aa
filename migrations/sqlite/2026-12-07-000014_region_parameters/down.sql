ALTER TABLE activities DROP COLUMN region_parameters_id;
ALTER TABLE regions ADD COLUMN points_per_gram TEXT;
-- Each region's own rate as the migration found it: its earliest active version's.
UPDATE regions SET points_per_gram = (
    SELECT json_extract(parameter_values, '$.points_per_gram') FROM region_parameter_versions v
    WHERE v.region_code = regions.code AND v.status = 'active'
    ORDER BY v.effective_from, v.id LIMIT 1
);
DROP TABLE region_parameter_versions;
