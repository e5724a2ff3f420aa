-- A `client_event_id` is the idempotency key of whoever posted the event, so it is unique per account and
-- poster: the account's own app (no provider) or one data provider. Unique per account alone, an
-- operator reusing an id the app had used (an order number, say) was answered with the app's record, or
-- refused, and its own record of the trip was never stored.
ALTER TABLE activities DROP CONSTRAINT activities_account_id_client_event_id_key;
-- The poster last: lookups by (account, client_event_id) use the index's prefix, and read each poster's
-- record of that id.
CREATE UNIQUE INDEX activities_event ON activities (account_id, client_event_id, COALESCE(provider_id, 0));
