ALTER TABLE offers DROP COLUMN residents_only;
