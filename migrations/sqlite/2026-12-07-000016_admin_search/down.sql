DROP INDEX audit_log_created;
DROP INDEX audit_log_entity;
DROP INDEX audit_log_actor;
