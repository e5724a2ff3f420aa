DROP INDEX activities_type_arrival;
CREATE INDEX activities_type_created ON activities (activity_type, created_at);
