-- The answers are rebuilt from the rows either way; an older build reads this column, empty.
ALTER TABLE activities ADD COLUMN response TEXT NOT NULL DEFAULT '';
