"""What a hostile caller would send, and the contract's answer to each (DESIGN.md, "Limits and guarantees", "Errors").

- test_handlers.py, classes 1-14: the API handlers in-process, real-shaped HTTP API events (events/), moto and the
  simulators over loopback (tests/conftest.py);
- test_gateway.py, classes 15-18: raw bytes through the local stack's gateway, where the transport matters
  (content types, bodies that are not UTF-8, percent-encoded paths and queries, header bytes);
- contract.py: the checks every case makes (no 5xx, no "Traceback", the one error shape, no share call for input
  the contract refuses) and the events that carry a hostile request.

Each module's docstring lists its classes; one test function per class, one parametrized case per attempt.
"""
