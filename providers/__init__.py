"""Cloud providers: records, per-cloud SDK adapters, price catalogs and the demo cloud."""
