DROP TABLE partner_green_tiers;
DROP TABLE activity_rollups;
