-- Offers are redeemable by visitors (a tourist from Beijing at a Huangshan gate) unless the partner keeps
-- one for the residents of its regions.
ALTER TABLE offers ADD COLUMN residents_only BOOLEAN NOT NULL DEFAULT FALSE;
