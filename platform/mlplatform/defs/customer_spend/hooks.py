"""What the machinery calls on the customer spend use case: its contract and its feed."""

from mlplatform.defs.customer_spend.contracts import CONTRACTS
from mlplatform.defs.customer_spend.feed import daily_file, reference_file

__all__ = ["CONTRACTS", "daily_file", "reference_file"]
