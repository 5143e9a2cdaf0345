"""The contract of the purchases file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplatform.ingest.contract import Column, TableContract

if TYPE_CHECKING:  # imported where a rule runs: the code location reads the contracts when it loads
    import pandas as pd


def _purchase_day(frame: pd.DataFrame) -> pd.Series:
    return frame["purchase_date"].astype("string")


def _is_iso_day(frame: pd.DataFrame) -> pd.Series:
    import pandas as pd

    parsed = pd.to_datetime(frame["purchase_date"], format="%Y-%m-%d", errors="coerce")
    return parsed.notna() | frame["purchase_date"].isna()


PURCHASES = TableContract(
    table="purchases",
    description="Every CDNOW purchase of the day: customer, CDs bought, dollars spent.",
    columns=(
        Column("customer_id", "string", "The customer (CDNOW's id)", required=True),
        Column("purchase_date", "string", "The day of the purchase (YYYY-MM-DD)", required=True),
        Column("purchase_number", "int", "The customer's nth purchase of that day", required=True, min=1, max=100),
        Column("number_of_cds", "int", "CDs bought", required=True, min=1, max=1000),
        Column("dollar_value", "float", "Dollars spent (0 for a free item)", required=True, min=0, max=10000),
    ),
    key=("customer_id", "purchase_date", "purchase_number"),
    row_day=_purchase_day,
)

CONTRACTS = {PURCHASES.table: PURCHASES}
