-- The registry's history cannot be emptied. The row-level triggers of 0001 and 0003 do not fire on
-- TRUNCATE, which emptied model_events, and with CASCADE every version and alias. A statement-level
-- BEFORE TRUNCATE trigger fires for every table a TRUNCATE empties, CASCADE included, so TRUNCATE
-- of model_versions, or of anything that cascades to it or to model_events, is refused as a whole.

CREATE FUNCTION registry_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is part of the model registry''s history and cannot be truncated', TG_TABLE_NAME
        USING HINT = 'versions are immutable and model_events is an append-only audit trail';
END;
$$;

CREATE TRIGGER model_versions_no_truncate
    BEFORE TRUNCATE ON model_versions
    FOR EACH STATEMENT EXECUTE FUNCTION registry_refuse_truncate();

CREATE TRIGGER model_events_no_truncate
    BEFORE TRUNCATE ON model_events
    FOR EACH STATEMENT EXECUTE FUNCTION registry_refuse_truncate();
