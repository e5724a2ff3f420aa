DROP INDEX activities_event;
ALTER TABLE activities ADD CONSTRAINT activities_account_id_client_event_id_key UNIQUE (account_id, client_event_id);
