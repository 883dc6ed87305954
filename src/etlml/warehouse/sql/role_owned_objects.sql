-- How many objects of this database (and databases of the cluster) a role owns; its temporary ones aside.
SELECT count(*) FROM (
    SELECT 1 FROM pg_class WHERE relowner = %(oid)s AND relpersistence <> 't'
    UNION ALL SELECT 1 FROM pg_proc WHERE proowner = %(oid)s
    UNION ALL SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typowner = %(oid)s AND n.nspname NOT LIKE 'pg_temp%%'
    UNION ALL SELECT 1 FROM pg_namespace WHERE nspowner = %(oid)s
        AND nspname NOT LIKE 'pg_temp%%' AND nspname NOT LIKE 'pg_toast_temp%%'
    UNION ALL SELECT 1 FROM pg_database WHERE datdba = %(oid)s
) AS owned;
