-- A role by name, with whether it is the role running this, and its powers (see warehouse/roles.py).
SELECT oid, rolname = current_user, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication
FROM pg_roles WHERE rolname = %(role)s;
