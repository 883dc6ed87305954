-- An interval whose figures could not be computed: the problem is recorded with the change it was seen
-- at, so the sweep skips it until its labels change again (a new change_seq). A change that arrived
-- meanwhile is left queued (the next sweep tries it); an interval with no queued change gets one row,
-- already marked.
WITH marked AS (
    UPDATE monitor_due SET problem = %(problem)s, problem_seq = change_seq
    WHERE interval_start = %(start)s AND change_seq = %(change_seq)s
    RETURNING interval_start
),
seq AS (SELECT nextval('monitor_due_seq') AS s WHERE %(change_seq)s::bigint IS NULL)
INSERT INTO monitor_due (interval_start, interval_end, change_seq, problem, problem_seq)
SELECT %(start)s, %(end)s, s, %(problem)s, s FROM seq
ON CONFLICT (interval_start) DO NOTHING;
