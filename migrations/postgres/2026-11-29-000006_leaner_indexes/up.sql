-- Every index is written on every insert, so the hot tables keep only those a query reads.
-- No query looks transfers up by their cause (an activity or redemption keeps its transfer's id).
DROP INDEX transfers_ref;
-- The review queue is the only reader of activities by status, and it reads flagged ones only: a
-- partial index keeps the credited majority out of it.
DROP INDEX activities_status;
CREATE INDEX activities_flagged ON activities (id) WHERE status = 'flagged';
