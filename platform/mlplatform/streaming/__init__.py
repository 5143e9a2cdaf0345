"""The same-day path: departure events through a topic, a consumer that turns them into features in
Feast's online store, and the bookkeeping that lets it stop and restart without losing or repeating
an event. `events` (what an event is), `features` (what the consumer computes), `topic` (where events
wait), `consumer` (the loop that joins them), `skew` (what it produced against dbt)."""
