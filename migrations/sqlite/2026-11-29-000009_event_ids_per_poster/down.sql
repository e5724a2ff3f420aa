-- Back to one id per account (fails if an app and a provider used the same id for one account).
DROP INDEX activities_event;
CREATE UNIQUE INDEX activities_account_event ON activities (account_id, client_event_id);
