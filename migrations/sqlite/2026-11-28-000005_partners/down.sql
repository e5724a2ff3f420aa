DROP TABLE redemption_counts;
DROP TABLE redemptions;
DROP TABLE offer_regions;
DROP TABLE offer_stock;
DROP TABLE offers;
DROP TABLE partners;
