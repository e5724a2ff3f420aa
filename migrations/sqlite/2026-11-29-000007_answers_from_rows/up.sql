-- An activity's answer is rebuilt from its row (status, figures, reasons, breakdown, methodology version)
-- instead of being stored a second time beside them: the column doubled the width of the hottest table.
ALTER TABLE activities DROP COLUMN response;
