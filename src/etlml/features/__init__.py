"""Features: their normalization statistics and the pure transforms (clean, impute, z-score)."""
