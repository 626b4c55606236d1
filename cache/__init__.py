"""cache: a caching reverse proxy; run as ``cache`` (front caches) and ``dbcache``."""
