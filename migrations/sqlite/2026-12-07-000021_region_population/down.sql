ALTER TABLE regions DROP COLUMN population_2020;
