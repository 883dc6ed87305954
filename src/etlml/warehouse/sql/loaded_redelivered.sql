-- After a straight COPY into an interval that held no rows: does another interval starting within the
-- dedup window hold one of the ids just loaded? (If so the load is undone and merged instead, which
-- finds and refuses them.) How it reads the window without a probe per id: migration 0014.
SELECT etlml_window_holds_loaded_ids(%(interval_start)s, %(window_start)s, %(window_end)s);
