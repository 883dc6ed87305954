-- The case study's model, ŷ = 0.3·f1_z + 0.2·f2_z + 0.5·f3_z, as version baseline_v1 and champion.
-- Its statistics are the population parameters of the simulated source:
-- f1 ~ N(10, 2), f2 ~ N(0, 1), f3 ~ N(100, 10).

INSERT INTO model_versions (model_version, kind, params, feature_stats, description)
VALUES (
    'baseline_v1',
    'linear',
    '{"coef": {"f1": 0.3, "f2": 0.2, "f3": 0.5}, "intercept": 0.0}',
    '{"f1": {"mean": 10.0, "std": 2.0}, "f2": {"mean": 0.0, "std": 1.0}, "f3": {"mean": 100.0, "std": 10.0}}',
    'Case-study baseline: fixed linear weights over z-scored features'
);

INSERT INTO model_aliases (alias, model_version) VALUES ('champion', 'baseline_v1');
