"""Model versions: their stored records, scoring, skops artifacts, the registry and what a run serves."""
