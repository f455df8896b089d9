"""Local stand-ins for AWS and the providers, used by tests and the dev stack."""
