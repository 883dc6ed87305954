-- Model registry: sklearn artifacts, the challenger alias, and an append-only audit of every change.

ALTER TABLE model_versions DROP CONSTRAINT model_versions_kind_check;
-- Immutability trigger stays; a new kind does not change existing rows.
ALTER TABLE model_versions
    ADD CONSTRAINT model_versions_kind_check CHECK (kind IN ('linear', 'sklearn')),
    -- sklearn: where the skops file lives (under the storage root) and its sha256, checked on every load
    ADD COLUMN artifact_uri text,
    ADD COLUMN artifact_sha256 text CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT model_versions_artifact_check
        CHECK ((kind = 'sklearn') = (artifact_uri IS NOT NULL AND artifact_sha256 IS NOT NULL));

ALTER TABLE model_aliases DROP CONSTRAINT model_aliases_alias_check;
ALTER TABLE model_aliases ADD CONSTRAINT model_aliases_alias_check CHECK (alias IN ('champion', 'challenger'));

CREATE TABLE model_events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event           text NOT NULL CHECK (event IN ('register', 'promote', 'shadow', 'unshadow', 'rollback')),
    model_version   text REFERENCES model_versions (model_version),
    -- the version that held the alias before this event (promote, rollback, shadow, unshadow)
    previous_version text REFERENCES model_versions (model_version),
    actor           text NOT NULL,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    details         jsonb NOT NULL DEFAULT '{}'
);

CREATE FUNCTION model_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'model_events is an append-only audit trail; it cannot be changed';
END;
$$;

CREATE TRIGGER model_events_no_change
    BEFORE UPDATE OR DELETE ON model_events
    FOR EACH ROW EXECUTE FUNCTION model_events_append_only();

-- The history so far, as events: baseline_v1 was registered and made champion by migration 0002.
INSERT INTO model_events (event, model_version, actor, details)
SELECT 'register', model_version, 'migration 0002', '{}' FROM model_versions;
INSERT INTO model_events (event, model_version, actor)
SELECT 'promote', model_version, 'migration 0002' FROM model_aliases WHERE alias = 'champion';
