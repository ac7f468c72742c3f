-- PostgreSQL: the least-privilege role client queries log in as (views/reader_role.py).
-- The server sets its password and keeps it here, readable by the owner only, so
-- every serve process on this database logs in with the same one. A row with no
-- password is a role the operator made and manages (--db-read-url).
CREATE TABLE IF NOT EXISTS tb_reader_credential (
    role_name  TEXT PRIMARY KEY,
    password   TEXT
);
REVOKE ALL ON tb_reader_credential FROM PUBLIC;
-- One role per database (roles are cluster-wide; a password is not), created only
-- where the migrating role may create roles; elsewhere the operator makes one.
-- It may log in and nothing more: it gets USAGE on the schema and SELECT on the
-- va_ views when the server starts and whenever a view is (re)created.
DO $$
DECLARE
    reader TEXT := left('flightdeck_reader_' || current_database(), 63);
    me     pg_roles%ROWTYPE;
BEGIN
    SELECT * INTO me FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = reader)
       AND (me.rolsuper OR me.rolcreaterole) THEN
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT '
                       'NOREPLICATION NOBYPASSRLS', reader);
    END IF;
    -- PUBLIC may create and write large objects, even in a read-only transaction
    -- (measured on PostgreSQL 15). Only the functions' owner may revoke that, so a
    -- non-superuser leaves it to the operator (README).
    IF me.rolsuper THEN
        REVOKE EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea),
            lo_put(oid, bigint, bytea), lo_open(oid, integer), lowrite(integer, bytea),
            lo_truncate(integer, integer), lo_truncate64(integer, bigint), lo_unlink(oid)
            FROM PUBLIC;
    END IF;
END $$;
