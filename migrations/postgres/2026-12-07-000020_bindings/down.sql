DROP TABLE bindings;
DROP TABLE binding_codes;
