"""The customer spend use case: the CDNOW purchase history (69,659 purchases by 23,570 customers,
1997-01-01 to 1998-06-30, shipped by the `lifetimes` package). At each purchase it predicts the
customer's spend over the next 90 days: a regression whose labels are known 90 days late.

`defs.yaml` declares it; `hooks.py` is what the machinery calls; `feed.py` cuts the days.
"""
