"""Requests and answers of the prediction API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

EARLIEST, LATEST = datetime(1900, 1, 1), datetime(2199, 12, 31, 23, 59)


class Flight(BaseModel):
    carrier: str = Field(min_length=2, max_length=3, description="Carrier code, e.g. UA",
                         examples=["UA"])
    flight_number: int = Field(ge=1, le=9999, examples=[1545])
    origin: str = Field(min_length=3, max_length=4, description="Origin airport (FAA code)", examples=["EWR"])
    dest: str = Field(min_length=3, max_length=4, description="Destination airport (FAA code)", examples=["IAH"])
    scheduled_departure: datetime = Field(
        description="Scheduled departure: ISO 8601; without an offset it is New York local time",
        examples=["2013-12-30T17:15:00"])
    tail_number: str | None = Field(default=None, max_length=10, examples=["N14228"])

    @field_validator("carrier", "origin", "dest", "tail_number")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.strip().upper() if value is not None else None

    @field_validator("scheduled_departure")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        # Far outside any schedule, and beyond what the feature code's timestamps hold (1678-2261).
        if not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
            raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
        return value


class Prediction(BaseModel):
    flight_id: str
    delay_probability: float = Field(description="Probability of departing over 15 minutes late, or cancelled")
    model_version: int
    defaults_used: list[str] = Field(description="Entities unknown to the feature store, scored with "
                                                 "missing-value defaults: origin, route, carrier, plane")
    request_id: str = Field(description="The request's id in the prediction log (the same for every flight of "
                                        "a batch): README, \"Tracing an answer\"")


class LivePrediction(Prediction):
    model: str = Field(description="The registered model that answered (the live one: flight_delay_live)")
    same_day_features_as_of: dict[str, str | None] = Field(
        description="Per same-day feature view, the UTC time of the departure its values reflect "
                    "(null where the origin or plane has none yet)")


class BatchRequest(BaseModel):
    flights: list[Flight] = Field(min_length=1, max_length=1000)


class BatchPrediction(BaseModel):
    predictions: list[Prediction]
