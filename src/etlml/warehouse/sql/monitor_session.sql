-- For the rest of the monitoring transaction: no JIT (compiling the statement cost more than running
-- it, about 5 s at 1,000,000 events), and memory enough to hash an interval of a million events in
-- one batch (joins and groups; a session computes one interval at a time).
SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true);
