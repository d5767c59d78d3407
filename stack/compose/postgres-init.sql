-- docker-compose: the schema registry's own database beside Switchboard's (run once, when the
-- PostgreSQL volume is initialized).
CREATE DATABASE apicurio OWNER switchboard;
