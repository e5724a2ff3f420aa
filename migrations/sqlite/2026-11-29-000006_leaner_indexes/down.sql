DROP INDEX activities_flagged;
CREATE INDEX activities_status ON activities (status, id);
CREATE INDEX transfers_ref ON transfers (ref_type, ref_id);
