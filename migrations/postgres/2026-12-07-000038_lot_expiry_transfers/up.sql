-- A lot's expiry is an `expire` transfer that resolves no hold (docs/ledger.md, "Lots"): `pending_id` is
-- now required of `post` and `void` only, and still allowed on nothing but the three that resolve holds.
DO $$
DECLARE name text;
BEGIN
    SELECT conname INTO name FROM pg_constraint
    WHERE conrelid = 'transfers'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%pending_id IS NOT NULL%' AND pg_get_constraintdef(oid) LIKE '%expire%';
    IF name IS NOT NULL THEN
        EXECUTE format('ALTER TABLE transfers DROP CONSTRAINT %I', name);
    END IF;
END $$;
ALTER TABLE transfers ADD CONSTRAINT transfers_resolution_names_its_hold
    CHECK (pending_id IS NOT NULL OR kind NOT IN ('post', 'void'));
ALTER TABLE transfers ADD CONSTRAINT transfers_only_resolutions_name_a_hold
    CHECK (pending_id IS NULL OR kind IN ('post', 'void', 'expire'));
