-- Run by xtask as the superuser, connected to database `postgres`, with psql variables user,
-- db and storage_db, before a synced run starts its own service: the service's bucket storage
-- database and its replication slots go, so the service replicates from scratch, and the
-- synced tables are emptied one statement (one transaction) per table.

SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'storage_db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'storage_db', :'user') \gexec

SELECT pg_drop_replication_slot(slot_name)
FROM pg_replication_slots
WHERE database = :'db' AND NOT active;

\connect :db
TRUNCATE lists;
TRUNCATE registers;
TRUNCATE ps_applied_txns;
