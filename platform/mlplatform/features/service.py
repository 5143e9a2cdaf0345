"""The model's feature contract with Feast, read from the use case's spec: the feature services, the
prediction key, its event time, the entity keys and the label.

Kept free of Feast imports, so the code location loads fast. The names are the use case's
(`defs/<name>/defs.yaml`); these are the active use case's (`mlplatform.usecases.active`).
"""

from mlplatform.usecases import active

_USE_CASE = active()

SERVICE_VERSION = _USE_CASE.features.service_version
SERVICE_NAME = _USE_CASE.features.service
# The same-day service, when the use case has a stream (read as of `lead` minutes before the event).
LIVE_SERVICE_NAME = _USE_CASE.features.same_day_service

# Feast's own name for the point in time of a lookup.
EVENT_TIMESTAMP = "event_timestamp"
# What a prediction brings to a feature lookup: its key, its join keys and its event time, which is
# both the point in time of the lookup and the request input of the on-demand features.
REQUEST_TIMESTAMP = _USE_CASE.features.request_time
JOIN_KEYS = tuple(_USE_CASE.prediction.entity_keys)
PREDICTION_KEY = _USE_CASE.prediction.key
LABEL = _USE_CASE.prediction.label
# The on-demand view of request-time features (computed, never materialized), if any.
CALENDAR_VIEW = _USE_CASE.features.request_view
