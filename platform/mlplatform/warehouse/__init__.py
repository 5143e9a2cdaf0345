"""The DuckDB warehouse that dbt builds: the dbt project, its single-writer lock, its Parquet exports."""
