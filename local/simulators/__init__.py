"""The provider simulators: 123pan and KDocs as their pages describe them, on loopback."""
