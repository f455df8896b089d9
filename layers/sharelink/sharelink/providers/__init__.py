"""One module per provider: request building, response normalizing, error mapping."""
