-- The change of an interval's labels this computation sees (NULL: none is queued), read under the
-- interval's lock before the figures are computed.
SELECT change_seq FROM monitor_due WHERE interval_start = %(start)s;
