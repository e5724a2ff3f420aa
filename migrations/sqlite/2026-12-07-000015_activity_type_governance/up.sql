-- Activity types are governed, not coded: whether a type is travel (a person does one at a time) and its
-- speed bound are properties of the type, seeded with the values the code and configuration held.
ALTER TABLE activity_types ADD COLUMN travel BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE activity_types ADD COLUMN max_speed_kmh INTEGER;
UPDATE activity_types SET travel = TRUE
 WHERE code = 'walking' OR code LIKE 'cycling.%' OR code LIKE 'transit.%';
UPDATE activity_types SET max_speed_kmh = 8 WHERE code = 'walking';
UPDATE activity_types SET max_speed_kmh = 30 WHERE code = 'cycling.bikeshare';
UPDATE activity_types SET max_speed_kmh = 80 WHERE code = 'transit.bus';
UPDATE activity_types SET max_speed_kmh = 120 WHERE code = 'transit.metro';

-- A change to an activity type waits for a second national administrator: `proposed` holds the fields
-- it sets (JSON), applied on approval.
CREATE TABLE activity_type_changes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    activity_type TEXT NOT NULL REFERENCES activity_types (code),
    proposed      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved')),
    requested_by  BIGINT NOT NULL REFERENCES users (id),
    requested_at  TIMESTAMP NOT NULL,
    approved_by   BIGINT REFERENCES users (id),
    approved_at   TIMESTAMP
);

-- Retiring an active version is requested by one administrator and approved by another; the version
-- stays in force meanwhile.
ALTER TABLE methodology_versions ADD COLUMN retire_requested_by BIGINT REFERENCES users (id);
ALTER TABLE methodology_versions ADD COLUMN retire_requested_at TIMESTAMP;
