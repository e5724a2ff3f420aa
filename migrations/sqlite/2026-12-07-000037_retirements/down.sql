DROP TABLE retirements;
