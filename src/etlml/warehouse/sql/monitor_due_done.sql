-- The interval's queued change is computed: removed, unless its labels changed again meanwhile (a
-- label run that committed since the read moved change_seq on; the next sweep computes it).
DELETE FROM monitor_due WHERE interval_start = %(start)s AND change_seq = %(change_seq)s;
