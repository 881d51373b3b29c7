"""The transfer engine: plan what to move, then move it with bounded concurrency."""
