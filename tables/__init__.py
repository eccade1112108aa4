"""Windowed state: the pure event-time windowing core (no Faust import) and the Faust tables that hold it."""
