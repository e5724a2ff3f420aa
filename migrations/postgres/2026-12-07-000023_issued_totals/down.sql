ALTER TABLE accounts DROP COLUMN issued_posted;
