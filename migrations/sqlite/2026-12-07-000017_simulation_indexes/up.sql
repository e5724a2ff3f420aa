-- The simulation reads a type's activities by arrival, in keyset pages of (created_at, id), and keeps
-- those that occurred in its window. With `id` and `occurred_at` in the index, the pages follow the
-- index's order (no sort) and `occurred_at` is tested on the index's entries (PostgreSQL reads the table
-- only for those in the window). Inserts still land at the index's end.
DROP INDEX activities_type_created;
CREATE INDEX activities_type_arrival ON activities (activity_type, created_at, id, occurred_at);
