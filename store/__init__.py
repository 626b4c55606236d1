"""store: the database server, the only process that opens the sqlite3 file."""
