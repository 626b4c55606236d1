"""api: the public JSON API — validation, auth, hashtags, the like batcher and the call log."""
