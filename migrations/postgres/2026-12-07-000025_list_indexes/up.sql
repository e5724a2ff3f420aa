-- A partner's redemptions are listed newest first, all of them or those in one status, and paged by id:
-- each listing walks one of these indexes from the cursor and stops after a page, however many
-- redemptions the partner has. Without them the partner's rows were found through
-- `redemptions_partner_resolved` and sorted whole for every page.
CREATE INDEX redemptions_partner ON redemptions (partner_id, id);
CREATE INDEX redemptions_partner_status ON redemptions (partner_id, status, id);
