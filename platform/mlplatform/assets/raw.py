"""Raw stage: landing files, checked against their contracts, written to the Parquet lake.

One asset per landing table: `raw_flights` and `raw_weather` by day, `raw_airports`,
`raw_airlines` and `raw_planes` whole. Each materialization reports two checks: the stored data
conforms to the contract (blocking: nothing downstream reads a partition that fails it) and the share
of rejected rows.
"""


import warnings

import dagster as dg

from mlplatform.domain.contracts import CONTRACTS
from mlplatform.ingest.contract import TableContract
from mlplatform.ingest.load import LandingFileError, conformance_problems, load_landing_file
from mlplatform.partitions import daily_partitions
from mlplatform.resources import PlatformState, RawIngestPolicy

GROUP = "raw"
CONFORMS = "conforms_to_contract"
REJECTS = "rejected_rows_within_limit"


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

    @dg.asset(
        key=key,
        group_name=GROUP,
        description=f"{contract.description} Validated against the `{contract.table}` contract "
                    f"(key: {', '.join(contract.key)}).",
        partitions_def=partitions,
        check_specs=checks,
        kinds={"python", "parquet"},
        code_version=contract.fingerprint(),
        metadata={"dagster/column_schema": column_schema(contract),
                  "contract_key": ", ".join(contract.key)},
    )
    def raw_table(context: dg.AssetExecutionContext, state: PlatformState,
                  raw_ingest: RawIngestPolicy) -> dg.MaterializeResult:
        day = context.partition_key if partitions else None
        try:
            loaded = load_landing_file(contract, state.landing, state.lake, day=day,
                                       max_reject_share=raw_ingest.max_reject_share, run_id=context.run.run_id)
        except LandingFileError as err:
            raise dg.Failure(description=str(err), allow_retries=False) from None

        validated = loaded.validated
        stored = state.lake.read(contract.table, day)
        problems = conformance_problems(contract, stored, day=day, expected_rows=validated.rows.num_rows)
        n_rejected = len(validated.rejects)
        context.log.info(f"{loaded.source}: {validated.rows.num_rows} rows to {loaded.lake_path}, "
                         f"{n_rejected} rejected")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": validated.rows.num_rows,
                "rows_read": validated.rows_read,
                "rejected_rows": n_rejected,
                "reject_share": round(validated.reject_share, 6),
                "reject_reasons": validated.reject_reasons,
                "source_file": dg.MetadataValue.path(str(loaded.source)),
                "source_sha256": loaded.source_sha256,
                "lake_path": dg.MetadataValue.path(str(loaded.lake_path)),
                "rejects_path": (dg.MetadataValue.path(str(loaded.rejects_path)) if loaded.rejects_path
                                 else dg.MetadataValue.text("none")),
                "dagster/column_schema": column_schema(contract),
            },
            check_results=[
                dg.AssetCheckResult(check_name=CONFORMS, passed=not problems,
                                    metadata={"problems": "; ".join(problems) or "none"}),
                dg.AssetCheckResult(
                    check_name=REJECTS, passed=n_rejected == 0, severity=dg.AssetCheckSeverity.WARN,
                    metadata={"rejected_rows": n_rejected, "reject_share": round(validated.reject_share, 6),
                              "limit": raw_ingest.max_reject_share, "reasons": validated.reject_reasons}),
            ],
        )

    return raw_table


raw_assets = [build_raw_asset(contract) for contract in CONTRACTS.values()]
