"""The customer spend use case's API: a customer, and the moment of the prediction (the end of the
day of a purchase, by default the end of today)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from pydantic import BaseModel, Field, field_validator

from mlplatform.serving.lookup import Lookup


class Customer(BaseModel):
    customer_id: str = Field(min_length=1, max_length=20, description="The customer (CDNOW id)", examples=["00001"])
    purchase_date: date | None = Field(default=None, description="The day of the purchase the prediction follows "
                                                                 "(default: today)", examples=["1998-03-02"])

    @field_validator("customer_id")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


def lookup(customer: Customer) -> Lookup:
    day = customer.purchase_date or datetime.now(timezone.utc).date()
    # As fct_customer_purchases: the end of the purchase day, every purchase of it known.
    moment = datetime.combine(day, time(), tzinfo=timezone.utc) + timedelta(days=1, seconds=-1)
    return Lookup(key=f"{customer.customer_id}-{day:%Y%m%d}", entities={"customer_id": customer.customer_id},
                  event_time=moment)
