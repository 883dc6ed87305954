INSERT INTO model_aliases (alias, model_version, assigned_at) VALUES (%(alias)s, %(model_version)s, now())
ON CONFLICT (alias) DO UPDATE SET model_version = EXCLUDED.model_version, assigned_at = EXCLUDED.assigned_at;
