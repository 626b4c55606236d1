"""dbcache: the cache in front of store — the same code as ``cache``, another configuration."""
