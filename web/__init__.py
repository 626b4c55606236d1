"""web: the server-rendered HTML front end, talking to the public API only."""
