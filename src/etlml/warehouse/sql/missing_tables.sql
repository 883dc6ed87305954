SELECT t FROM unnest(%(tables)s::text[]) AS t WHERE to_regclass(t) IS NULL ORDER BY t;
