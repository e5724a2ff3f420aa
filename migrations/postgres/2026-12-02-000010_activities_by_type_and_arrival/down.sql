DROP INDEX activities_type_created;
CREATE INDEX activities_type_time ON activities (activity_type, occurred_at);
