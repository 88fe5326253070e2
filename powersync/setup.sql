-- Run by `cargo xtask pg up` as the superuser, connected to database `postgres`, with psql
-- variables user, password, db and storage_db. Idempotent.

SELECT format('CREATE ROLE %I LOGIN REPLICATION PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec

SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec

SELECT format('CREATE DATABASE %I OWNER %I', :'storage_db', :'user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'storage_db') \gexec

\connect :db

-- One row per key; v is the list, comma-separated, in append order (as on the clients).
CREATE TABLE IF NOT EXISTS lists (
  id text PRIMARY KEY,
  k bigint NOT NULL,
  v text NOT NULL
);
ALTER TABLE lists OWNER TO :"user";

-- One row per max-write-wins register: v only grows (writers keep the greater value).
CREATE TABLE IF NOT EXISTS registers (
  id text PRIMARY KEY,
  k bigint NOT NULL,
  v bigint NOT NULL
);
ALTER TABLE registers OWNER TO :"user";

-- The CRUD transactions the upload connector has applied: applying one twice is detected here.
CREATE TABLE IF NOT EXISTS ps_applied_txns (
  client_id text NOT NULL,
  tx_id bigint NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, tx_id)
);
ALTER TABLE ps_applied_txns OWNER TO :"user";

SELECT 'CREATE PUBLICATION powersync FOR TABLE lists, registers'
WHERE NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'powersync') \gexec

-- A database set up before the register table existed: publish it too.
SELECT 'ALTER PUBLICATION powersync ADD TABLE registers'
WHERE NOT EXISTS (SELECT FROM pg_publication_tables
                  WHERE pubname = 'powersync' AND tablename = 'registers') \gexec
