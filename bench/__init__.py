"""Benchmarks: `make bench`. Numbers, not pass/fail: the README's performance section quotes them."""
