"""Windowed state: the pure event-time windowing core and the Faust tables that hold it."""
