"""Example EnPACT plug-ins (docs/extending.md)."""
