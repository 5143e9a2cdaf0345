"""Raw stage: landing files, checked against their contracts, written to the Parquet lake.

One asset per landing table of the use case's feed: `raw_<table>`, by day for its daily tables,
whole for its reference tables. Each materialization reports two checks: the stored data
conforms to the contract (blocking: nothing downstream reads a partition that fails it) and the share
of rejected rows.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from mlplatform.usecases import active
from mlplatform.faults import crash_point
from mlplatform.ingest.contract import TableContract
from mlplatform.partitions import daily_partitions
from mlplatform.resources import PlatformState, RawIngestPolicy

if TYPE_CHECKING:  # the loader (pandas, pyarrow) is imported when a raw asset runs, not at load
    from mlplatform.ingest.load import LoadResult

GROUP = "raw"
CONFORMS = "conforms_to_contract"
REJECTS = "rejected_rows_within_limit"


@dataclass(frozen=True)
class LoadedDay:
    """What a materialization reports of one loaded file. The rows are in the lake by then: a
    range keeps these figures per day, not a year of tables in memory."""

    source: Path
    source_sha256: str
    lake_path: Path
    rejects_path: Path | None
    rows: int
    rows_read: int
    rejected: int
    reject_reasons: dict[str, int]

    @classmethod
    def of(cls, load: "LoadResult") -> "LoadedDay":
        validated = load.validated
        return cls(load.source, load.source_sha256, load.lake_path, load.rejects_path, validated.rows.num_rows,
                   validated.rows_read, len(validated.rejects), dict(validated.reject_reasons))


def raw_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(f"raw_{table}")


def column_schema(contract: TableContract) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, c.type, description=c.description,
                       constraints=dg.TableColumnConstraints(nullable=not c.required))
        for c in contract.columns
    ])


def _check_specs(key: dg.AssetKey, partitions: dg.PartitionsDefinition | None) -> list[dg.AssetCheckSpec]:
    with warnings.catch_warnings():
        # Partition-aware check results (a check status per day) are a Dagster preview feature.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(CONFORMS, asset=key, blocking=True, partitions_def=partitions,
                              description="The stored Parquet has the contract's schema, unique keys "
                                          "and only rows of its own day."),
            dg.AssetCheckSpec(REJECTS, asset=key, partitions_def=partitions,
                              description="Rows set aside for breaking a row rule (warns on any)."),
        ]


def build_raw_asset(contract: TableContract) -> dg.AssetsDefinition:
    key = raw_asset_key(contract.table)
    partitions = daily_partitions if contract.is_daily else None
    checks = _check_specs(key, partitions)

    def raw_table(context: dg.AssetExecutionContext, state: PlatformState,
                  raw_ingest: RawIngestPolicy) -> dg.MaterializeResult:
        from mlplatform.ingest.load import LandingFileError, conformance_problems, load_landing_file

        # One day, or each day of a range (a catch-up or `mlplatform pipeline`: one run, not one a day).
        days = list(context.partition_keys) if partitions else [None]
        loads, problems = [], []
        for day in days:
            try:
                loaded = load_landing_file(contract, state.landing, state.lake, day=day,
                                           max_reject_share=raw_ingest.max_reject_share, run_id=context.run.run_id)
            except LandingFileError as err:
                # Days before this one are in the lake but not recorded: the run fails as a whole, and
                # loading them again (by day) writes the same bytes.
                raise dg.Failure(description=str(err), allow_retries=False) from None
            stored = state.lake.read(contract.table, day)
            found = conformance_problems(contract, stored, day=day, expected_rows=loaded.validated.rows.num_rows)
            problems += [f"{day}: {p}" if len(days) > 1 else p for p in found]
            loads.append(LoadedDay.of(loaded))
            del loaded, stored  # the day's tables: a range holds one day at a time
            crash_point("raw_load")  # a day in the lake, its materialization not yet recorded
            if len(days) == 1:  # a range logs once: a log line per day is an event-log write per day
                context.log.info(f"{loads[0].source}: {loads[0].rows} rows to {loads[0].lake_path}, "
                                 f"{loads[0].rejected} rejected")
        if len(days) > 1:
            context.log.info(f"{len(days)} days, {days[0]} to {days[-1]}: "
                             f"{sum(x.rows for x in loads)} rows to {state.lake.table_dir(contract.table)}, "
                             f"{sum(x.rejected for x in loads)} rejected")
        return _materialization(contract, loads, problems, raw_ingest.max_reject_share)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # `backfill_policy` is a beta parameter
        return dg.asset(
            key=key,
            group_name=GROUP,
            description=f"{contract.description} Validated against the `{contract.table}` contract "
                        f"(key: {', '.join(contract.key)}).",
            partitions_def=partitions,
            # A range of days is one run (each day still its own file in the lake).
            backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
            check_specs=checks,
            kinds={"python", "parquet"},
            code_version=contract.fingerprint(),
            metadata={"dagster/column_schema": column_schema(contract),
                      "contract_key": ", ".join(contract.key)},
        )(raw_table)


raw_assets = [build_raw_asset(contract) for contract in active().module.CONTRACTS.values()]


def _materialization(contract: TableContract, loads: list[LoadedDay], problems: list[str],
                     max_reject_share: float) -> dg.MaterializeResult:
    """The run's figures, summed over its days; a single day also names its files."""
    rows = sum(load.rows for load in loads)
    read = sum(load.rows_read for load in loads)
    rejected = sum(load.rejected for load in loads)
    reasons: dict[str, int] = {}
    for load in loads:
        for reason, count in load.reject_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    share = round(rejected / read, 6) if read else 0.0
    metadata = {"dagster/row_count": rows, "rows_read": read, "rejected_rows": rejected, "reject_share": share,
                "reject_reasons": reasons, "dagster/column_schema": column_schema(contract)}
    if len(loads) == 1:
        (load,) = loads
        metadata |= {
            "source_file": dg.MetadataValue.path(str(load.source)),
            "source_sha256": load.source_sha256,
            "lake_path": dg.MetadataValue.path(str(load.lake_path)),
            "rejects_path": (dg.MetadataValue.path(str(load.rejects_path)) if load.rejects_path
                             else dg.MetadataValue.text("none")),
        }
    else:  # each day's source checksum is beside its Parquet file (`Lake.source_sha256`)
        metadata |= {"days": len(loads), "lake_path": dg.MetadataValue.path(str(loads[0].lake_path.parents[1]))}
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(check_name=CONFORMS, passed=not problems,
                                metadata={"problems": "; ".join(problems) or "none"}),
            dg.AssetCheckResult(
                check_name=REJECTS, passed=rejected == 0, severity=dg.AssetCheckSeverity.WARN,
                metadata={"rejected_rows": rejected, "reject_share": share, "limit": max_reject_share,
                          "reasons": reasons}),
        ],
    )
