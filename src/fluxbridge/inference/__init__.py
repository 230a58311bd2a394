"""Forward runs: every member over every land cell and day, chunked and resumable."""
