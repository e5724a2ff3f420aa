-- The simulation of a draft reads a type's activities by time. Indexed by `occurred_at`, every insert
-- landed wherever its trip fell among the type's stored trips (a batch of late rides, a scattered page
-- each); by `created_at`, every insert lands at the index's end. The simulation bounds `created_at` from
-- below (no activity is stored before it occurred, beyond the allowed clock skew) and filters
-- `occurred_at` in the rows it reads.
DROP INDEX activities_type_time;
CREATE INDEX activities_type_created ON activities (activity_type, created_at);
