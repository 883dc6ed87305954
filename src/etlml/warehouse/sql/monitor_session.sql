-- For the rest of the monitoring transaction, a plan that does not depend on statistics a freshly
-- loaded interval lacks (estimated at a few rows, the interval's million rows were joined by a
-- million index lookups and sorted on disk): hash joins and hash aggregates only, memory enough to
-- hash a million events in one batch (one interval at a time per session), and no JIT (compiling the
-- statement cost more than running it, about 5 s at 1,000,000 events).
SELECT set_config('jit', 'off', true),
       set_config('work_mem', '64MB', true),
       set_config('enable_nestloop', 'off', true),
       set_config('enable_sort', 'off', true);
