"""Command-line front end: parse input, call jobs, render their events and results."""
