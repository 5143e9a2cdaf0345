"""What a request is to the machinery: a use case's hooks turn their own request model into a `Lookup`
(`lookup(request)`), and the API reads the features, scores and logs from that alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Lookup:
    key: str  # the prediction's key (the use case's prediction.key), as the answer and the log carry it
    entities: dict[str, str]  # join key -> value, for every entity of the feature service
    event_time: datetime  # when the prediction is made (UTC): its features are as of then
    request_features: dict[str, Any] = field(default_factory=dict)  # computed from the request itself
