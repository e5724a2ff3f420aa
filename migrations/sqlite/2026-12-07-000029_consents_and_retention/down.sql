DROP TABLE retention_marks;
DROP TABLE consent_accesses;
DROP TABLE consents;
