"""stack: run the whole First Price Twitter stack as local processes (``make run``)."""
