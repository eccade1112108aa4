"""The command line: the ``txstream`` entry point and each of its commands."""
