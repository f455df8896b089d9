"""Operator commands: first authorization of the providers (`python -m admin --help`)."""
