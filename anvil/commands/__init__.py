"""One module per CLI command body; anvil/cli.py keeps only the signatures."""
