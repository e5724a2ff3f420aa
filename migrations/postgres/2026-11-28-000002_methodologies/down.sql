DROP TABLE catalog_epoch;
DROP TABLE methodology_versions;
DROP TABLE activity_types;
DROP TABLE grid_factors;
