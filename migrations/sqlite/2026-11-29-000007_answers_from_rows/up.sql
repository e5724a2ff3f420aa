-- An activity's answer is rebuilt from its row (status, figures, reasons, breakdown, methodology version)
-- instead of being stored a second time beside it: the column doubled the width of the hottest table.
-- Reviews used to add their reasons (`cap_reached`) to the stored answer only; they move to the row first.
UPDATE activities SET reasons = json_extract(response, '$.reasons')
WHERE reviewed_at IS NOT NULL AND json_valid(response);
ALTER TABLE activities DROP COLUMN response;
