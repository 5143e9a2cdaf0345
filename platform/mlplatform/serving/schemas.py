"""Requests and answers of the prediction API, shaped by the use case: its request model (its hooks'
`Request`), and answers that carry its prediction key and its output under their own names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, create_model

from mlplatform.usecases import active


@dataclass(frozen=True)
class Schemas:
    request: type[BaseModel]
    prediction: type[BaseModel]
    live_prediction: type[BaseModel]
    batch_request: type[BaseModel]
    batch_prediction: type[BaseModel]
    key: str  # the prediction key's field
    output: str  # the prediction's field
    batch_field: str  # the list of requests of /predict/batch


def schemas() -> Schemas:
    use_case = active()
    request = use_case.module.Request
    key, output, batch_field = use_case.prediction.key, use_case.prediction.output, use_case.api.batch_field
    described = "a probability of the outcome" if use_case.task.kind == "binary" else "the predicted value"
    prediction = create_model(
        "Prediction",
        **{key: (str, Field(description="The prediction's key (the prediction log's too)")),
           output: (float, Field(description=f"The champion's prediction: {described} ({use_case.prediction.label})")),
           "model_version": (int, ...),
           "defaults_used": (list[str], Field(description="Entities unknown to the feature store, scored with "
                                                          "missing-value defaults")),
           "request_id": (str, Field(description="The request's id in the prediction log (the same for every "
                                                 "prediction of a batch)")),
           "features_after_event": (list[str], Field(
               default_factory=list,
               description="Feature views whose online values are from after the prediction's event time (asked "
                           "about an event the store has already moved past): the answer used what training never "
                           "sees, and the realized online metrics leave it out"))})
    live = create_model(
        "LivePrediction", __base__=prediction,
        model=(str, Field(description="The registered model that answered (the live one)")),
        same_day_features_as_of=(dict[str, str | None], Field(
            description="Per same-day feature view, the UTC time of the event its values reflect (null where "
                        "there is none yet)")))
    batch_request = create_model("BatchRequest", **{batch_field: (list[request], Field(min_length=1, max_length=1000))})
    batch_prediction = create_model("BatchPrediction", predictions=(list[prediction], ...))
    return Schemas(request, prediction, live, batch_request, batch_prediction, key, output, batch_field)


def answer(schema: type[BaseModel], key: str, output: str, key_value: str, value: float, **rest: Any) -> BaseModel:
    return schema(**{key: key_value, output: value, **rest})
