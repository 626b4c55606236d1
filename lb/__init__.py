"""lb: a round-robin reverse proxy over the cache replicas (or any list of upstreams)."""
