-- Whether the connected role may register versions and move aliases (the owner may; the pipeline role may not).
SELECT has_table_privilege('model_versions', 'INSERT')
   AND has_table_privilege('model_aliases', 'INSERT, UPDATE, DELETE')
   AND has_table_privilege('model_events', 'INSERT');
