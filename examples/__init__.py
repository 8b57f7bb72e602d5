"""Bundled example repositories and stage policies (data, copied by `anvil demo`)."""
