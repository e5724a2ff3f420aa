DROP TABLE cache_entries;
