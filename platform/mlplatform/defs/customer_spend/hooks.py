"""What the machinery calls on the customer spend use case: its contract and its feed."""

from mlplatform.defs.customer_spend.contracts import CONTRACTS
from mlplatform.defs.customer_spend.feed import daily_file, reference_file

from mlplatform.defs.customer_spend.api import Customer as Request, lookup

__all__ = ["Request", "lookup", "CONTRACTS", "daily_file", "reference_file"]
