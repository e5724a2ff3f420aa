DROP TABLE redemption_counts;
DROP TABLE redemptions;
DROP TABLE offer_regions;
DROP TABLE offers;
DROP TABLE partners;
