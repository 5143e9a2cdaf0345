"""The same-day path, for any use case whose hooks define a `STREAM`: its events through a topic, a
consumer that turns them into features in Feast's online store, and the bookkeeping that lets it
stop and restart without losing or repeating an event. `events` (the contract a use case's stream
fulfils), `topic` (where events wait), `consumer` (the loop that joins them), `skew` (what it
produced against dbt). What an event holds and what it computes are the use case's."""
