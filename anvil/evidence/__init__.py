"""Evidence from the ledger: what each model achieved per stage, a cheaper chain where it allows, a forecast."""
