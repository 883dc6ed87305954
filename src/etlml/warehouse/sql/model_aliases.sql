SELECT alias, model_version FROM model_aliases;
