-- The reference profile of baseline_v1, the champion of a fresh warehouse: what 30_monitor measures
-- its inputs' and scores' drift against. Fitted on the simulator's population (baseline_v1 was not
-- trained on stored events): the JSON below is exactly what `python -m etlml.monitoring.baseline_profile`
-- prints (seed and sample size in that module), and tests/integration/test_monitoring.py checks that
-- the stored profile equals it.
--
-- model_versions rows are immutable (trigger model_versions_no_update of 0001): a registered version
-- never changes. This one statement is the exception on purpose: reference_profile is a column added
-- by 0009 after baseline_v1 was registered, filled here once for the row that predates it; the
-- version's model (kind, params, feature_stats) is untouched. The trigger is disabled for this
-- statement only, inside the migration's transaction (nobody else sees the table without it), and
-- enabled again before the migration commits.
ALTER TABLE model_versions DISABLE TRIGGER model_versions_no_update;

UPDATE model_versions
SET reference_profile = '{"f1": {"edges": [7.4485795235912065, 8.321574195896979, 8.957404931669785, 9.494420560456536, 10.005375395393774, 10.508217534826173, 11.043912832209537, 11.684746003456812, 12.55849953471028], "expected": [0.099995, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.100005], "missing_share": 0.0, "n": 200000}, "f2": {"edges": [-1.2831574247934028, -0.84116771647752, -0.5248349915170443, -0.25537004208315983, -0.0002760629632228218, 0.24968785690960849, 0.5219064852716175, 0.8419331219491021, 1.2822929870028708], "expected": [0.09999579164430977, 0.10000105208892256, 0.10000105208892256, 0.09999579164430977, 0.10000105208892256, 0.10000105208892256, 0.09999579164430977, 0.10000105208892256, 0.10000105208892256, 0.10000631253353534], "missing_share": 0.049510000000000054, "n": 200000}, "f3": {"edges": [87.17543292728332, 91.58662773825948, 94.74322195394053, 97.45546294147631, 99.9838041688825, 102.5334068141633, 105.23087590241964, 108.44150213709953, 112.82597528834951], "expected": [0.099995, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.100005], "missing_share": 0.0, "n": 200000}, "score": {"edges": [-0.7853213330732811, -0.5162077549959279, -0.3226436495294902, -0.15477635529944844, -0.0006763334109538555, 0.1554477830244575, 0.32425151062671476, 0.5174813290725113, 0.7846304300677398], "expected": [0.099995, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.100005], "missing_share": 0.0, "n": 200000}}'::jsonb
WHERE model_version = 'baseline_v1' AND reference_profile IS NULL;

ALTER TABLE model_versions ENABLE TRIGGER model_versions_no_update;
