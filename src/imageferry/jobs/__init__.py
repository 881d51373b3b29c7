"""Jobs: copy, check (and later save, load). Each builds a plan, runs it, returns results."""
