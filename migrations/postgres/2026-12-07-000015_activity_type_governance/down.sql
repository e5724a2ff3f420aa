ALTER TABLE methodology_versions DROP COLUMN retire_requested_at;
ALTER TABLE methodology_versions DROP COLUMN retire_requested_by;
DROP TABLE activity_type_changes;
ALTER TABLE activity_types DROP COLUMN max_speed_kmh;
ALTER TABLE activity_types DROP COLUMN travel;
