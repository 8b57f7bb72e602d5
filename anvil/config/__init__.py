"""Layered configuration: stage policy, model catalogue, repo config."""
