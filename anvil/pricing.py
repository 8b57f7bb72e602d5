"""Re-export of `anvil.ledger.pricing`: `anvil.pricing.call_cost(...)` is public API used by tools outside anvil."""

from anvil.ledger.pricing import *  # noqa: F401,F403
from anvil.ledger.pricing import call_cost  # noqa: F401
