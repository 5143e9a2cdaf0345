"""What a challenger was trained on, as one fingerprint: the labeled rows (the newest day whose
outcomes are known, and how many rows there are up to it), the dbt code, the feature definitions and
the model settings. A challenger the gate refused is not trained again on the same fingerprint: the
retrain decision waits until one of them changes (`automation/retrain.py`)."""

from __future__ import annotations

import hashlib
import json

from mlplatform.ingest.lake import Lake

INPUTS_TAG = "training_inputs"  # on the MLflow run and the model version


def training_inputs(exports: Lake, settings: dict) -> str:
    import pyarrow.parquet as pq

    from mlplatform.features.repo import definitions_hash
    from mlplatform.features.training import ENTITY_TABLE, matured_days
    from mlplatform.warehouse.project import dbt_code_version

    days = matured_days(exports.days(ENTITY_TABLE))
    rows = sum(pq.read_metadata(exports.path(ENTITY_TABLE, d)).num_rows for d in days)
    document = {"labeled_through": days[-1] if days else None, "rows": rows, "dbt": dbt_code_version(),
                "features": definitions_hash(), "settings": settings}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:16]
