"""Feast definitions of the customer spend features: the customer, the view over its history, the service.

The source is the Parquet export of the dbt model `feat_customer_history` under
$MLPLATFORM_HOME/warehouse/exports (one file per day). A row holds the customer's history as of the
end of a day they bought.
"""

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64

from mlplatform.usecases import load

_FEATURES = load("customer_spend").features
EXPORTS = Path(os.environ.get("MLPLATFORM_HOME", Path(__file__).resolve().parents[1] / ".mlplatform")) \
    / "warehouse" / "exports"

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING,
                  description="A CDNOW customer")

customer_history = FeatureView(
    name="customer_history", entities=[customer],
    # A customer's history holds until their next purchase; a year without one, and a row from then
    # says little of today.
    ttl=timedelta(days=366),
    source=FileSource(name="feat_customer_history",
                      path=str(EXPORTS / "feat_customer_history" / "date=*" / "data.parquet"),
                      file_format=ParquetFormat(), timestamp_field="event_timestamp",
                      description="dbt model feat_customer_history, exported as Parquet"),
    schema=[Field(name=n, dtype=Float64) for n in (
        "spend_today", "cds_today", "purchase_days_to_date", "spend_to_date", "mean_spend_per_day",
        "tenure_days", "days_since_previous", "spend_last_30d", "spend_last_90d", "spend_last_365d")],
    description="The customer's purchase history as of the end of a day they bought.")

customer_spend_service = FeatureService(
    name=_FEATURES.service, features=[customer_history],
    tags={"version": _FEATURES.service_version, "model": "customer_spend"},
    description="Every feature the customer spend model reads, as of the purchase.")
