"""Suite-wide fixtures. Layer-specific fixtures live in each tests/<layer>/conftest.py."""
