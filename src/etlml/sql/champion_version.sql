SELECT model_version FROM model_aliases WHERE alias = 'champion';
