-- The landing files a run read: file (relative to the landing root) -> size in bytes as stored (-1 for a
-- symbolic link, which is never read). NULL for sources without files. `etlml runs changed` compares it
-- with the partition folder as it is now, to find files that landed (or changed) after their interval ran.
ALTER TABLE run_audit ADD COLUMN files jsonb;
