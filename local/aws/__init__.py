"""AWS for the local stack: moto in a process of its own, the template's resources in it."""
