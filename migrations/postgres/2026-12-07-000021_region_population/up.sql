-- Resident population at the 2020 census (Seventh National Population Census, NBS bulletin of May 2021),
-- from the project's reference data (regions.csv, population_2020): the denominator of per-capita
-- statistics. Cities carry none: the census bulletin gives provinces.
ALTER TABLE regions ADD COLUMN population_2020 BIGINT;
UPDATE regions SET population_2020 = 1411778724 WHERE code = 'CN';
UPDATE regions SET population_2020 = 21893095 WHERE code = '110000';
UPDATE regions SET population_2020 = 13866009 WHERE code = '120000';
UPDATE regions SET population_2020 = 74610235 WHERE code = '130000';
UPDATE regions SET population_2020 = 34915616 WHERE code = '140000';
UPDATE regions SET population_2020 = 24049155 WHERE code = '150000';
UPDATE regions SET population_2020 = 42591407 WHERE code = '210000';
UPDATE regions SET population_2020 = 24073453 WHERE code = '220000';
UPDATE regions SET population_2020 = 31850088 WHERE code = '230000';
UPDATE regions SET population_2020 = 24870895 WHERE code = '310000';
UPDATE regions SET population_2020 = 84748016 WHERE code = '320000';
UPDATE regions SET population_2020 = 64567588 WHERE code = '330000';
UPDATE regions SET population_2020 = 61027171 WHERE code = '340000';
UPDATE regions SET population_2020 = 41540086 WHERE code = '350000';
UPDATE regions SET population_2020 = 45188635 WHERE code = '360000';
UPDATE regions SET population_2020 = 101527453 WHERE code = '370000';
UPDATE regions SET population_2020 = 99365519 WHERE code = '410000';
UPDATE regions SET population_2020 = 57752557 WHERE code = '420000';
UPDATE regions SET population_2020 = 66444864 WHERE code = '430000';
UPDATE regions SET population_2020 = 126012510 WHERE code = '440000';
UPDATE regions SET population_2020 = 50126804 WHERE code = '450000';
UPDATE regions SET population_2020 = 10081232 WHERE code = '460000';
UPDATE regions SET population_2020 = 32054159 WHERE code = '500000';
UPDATE regions SET population_2020 = 83674866 WHERE code = '510000';
UPDATE regions SET population_2020 = 38562148 WHERE code = '520000';
UPDATE regions SET population_2020 = 47209277 WHERE code = '530000';
UPDATE regions SET population_2020 = 3648100 WHERE code = '540000';
UPDATE regions SET population_2020 = 39528999 WHERE code = '610000';
UPDATE regions SET population_2020 = 25019831 WHERE code = '620000';
UPDATE regions SET population_2020 = 5923957 WHERE code = '630000';
UPDATE regions SET population_2020 = 7202654 WHERE code = '640000';
UPDATE regions SET population_2020 = 25852345 WHERE code = '650000';
