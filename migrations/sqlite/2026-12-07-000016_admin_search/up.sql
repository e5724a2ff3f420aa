-- An administrator searches the audit log by who acted, by what was changed, and by time, newest
-- first (by id): each search walks one of these indexes instead of the whole log.
CREATE INDEX audit_log_actor ON audit_log (actor_user_id, id);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, id);
CREATE INDEX audit_log_created ON audit_log (created_at);
