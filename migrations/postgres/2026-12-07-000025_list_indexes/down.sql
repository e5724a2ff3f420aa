DROP INDEX redemptions_partner_status;
DROP INDEX redemptions_partner;
