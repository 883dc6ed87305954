-- Staged labels whose event is not stored within the window: quarantined as 'unknown_event'.
INSERT INTO stage_rejected_labels (source_file, row_number, event_id, reason, message, raw)
SELECT s.source_file, s.row_number, s.event_id, 'unknown_event', %(message)s, s.raw
FROM stage_labels AS s
WHERE NOT EXISTS (SELECT 1 FROM matched_labels AS m WHERE m.event_id = s.event_id);
