"""Ingestion machinery: data contracts, the landing zone, the replayed feed and the Parquet lake."""
