-- The simulation reads a type's activities by arrival, in keyset pages of (created_at, id), and keeps
-- those that occurred in its window. With `id` and `occurred_at` in the index, the pages follow the
-- index's order (no sort) and the rows outside the window are passed over in the index, without reading
-- the table. Inserts still land at the index's end.
DROP INDEX activities_type_created;
CREATE INDEX activities_type_arrival ON activities (activity_type, created_at, id, occurred_at);
