"""Loads one landing file into the lake: validate, then write, or quarantine and change nothing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from mlplatform.ingest.contract import TableContract
from mlplatform.ingest.lake import Lake
from mlplatform.ingest.landing import LandingZone, data_rows, sha256
from mlplatform.ingest.validate import ContractViolation, ValidatedTable, validate_csv


class LandingFileError(Exception):
    """A landing file could not be loaded; the message names the file and the problem."""


class LandingFileMissing(LandingFileError):
    pass


class LandingFileRejected(LandingFileError):
    def __init__(self, message: str, *, kind: str, quarantined_path: Path):
        super().__init__(message)
        self.kind = kind
        self.quarantined_path = quarantined_path


@dataclass(frozen=True)
class LoadResult:
    source: Path
    source_sha256: str
    lake_path: Path
    rejects_path: Path | None
    validated: ValidatedTable


def load_landing_file(contract: TableContract, zone: LandingZone, lake: Lake, *, day: str | None = None,
                      max_reject_share: float = 0.05, run_id: str | None = None) -> LoadResult:
    """Validate `contract.table`'s landing file (for `day`) and write it to the lake atomically.

    A file that breaks its contract is moved to quarantine with a reason file beside it, and
    `LandingFileRejected` is raised: the lake keeps whatever it held before.
    """
    source = zone.file(contract.table, day)
    what = contract.table + (f" for {day}" if day else "")
    if not source.exists():
        message = f"no landing file for {what}: expected {source}"
        earlier = zone.quarantined(contract.table, day)
        if earlier:
            last = earlier[-1]
            message += (f"; the last delivery was quarantined at {last.path} because: "
                        f"{last.reason.get('problem')}. Deliver a corrected file to {source}")
        raise LandingFileMissing(message)

    data = source.read_bytes()
    checksum = sha256(data)
    try:
        validated = validate_csv(contract, data, day=day, max_reject_share=max_reject_share)
        incomplete = _manifest_problem(zone, contract.table, day, data, checksum)
        if incomplete:
            raise ContractViolation("incomplete", incomplete)
    except ContractViolation as violation:
        moved = zone.quarantine(source, {
            "table": contract.table, "day": day, "kind": violation.kind, "problem": violation.problem,
            "sha256": checksum, "size_bytes": len(data), "run_id": run_id,
        })
        raise LandingFileRejected(
            f"landing file {source} rejected ({violation.kind}): {violation.problem}. "
            f"Moved to {moved.path}, reason beside it; the lake is unchanged.",
            kind=violation.kind, quarantined_path=moved.path) from None

    lake_path = lake.write(contract.table, validated.rows, day)
    rejects_path = lake.write_rejects(contract.table, validated.rejects, day)
    lake.write_source(contract.table, day, checksum)
    return LoadResult(source, checksum, lake_path, rejects_path, validated)


def _manifest_problem(zone: LandingZone, table: str, day: str | None, data: bytes, checksum: str) -> str | None:
    """How the file differs from the manifest the feed wrote after it (None: it matches, or the feed
    sent no manifest). A file cut at a line boundary passes every contract rule: only this tells."""
    try:
        manifest = zone.manifest(table, day)
    except ValueError as err:
        return str(err)
    if manifest is None or (manifest["bytes"] == len(data) and manifest["sha256"] == checksum):
        return None
    return (f"the file has {len(data):,} bytes and {data_rows(data):,} data rows, but its manifest "
            f"{zone.manifest_path(table, day)} says {manifest['bytes']:,} bytes and {manifest['rows']:,} rows "
            "(checksums differ): it was cut short or changed after the feed delivered it. Deliver the file "
            "again with a new manifest")


def conformance_problems(contract: TableContract, stored: pa.Table, *, day: str | None,
                         expected_rows: int) -> list[str]:
    """What is wrong with a table as stored in the lake (empty when it conforms)."""
    problems = []
    if stored.schema != contract.arrow_schema():
        problems.append(f"schema differs from the contract: {stored.schema} vs {contract.arrow_schema()}")
    if stored.num_rows != expected_rows:
        problems.append(f"{stored.num_rows} rows stored, {expected_rows} validated")
    frame = stored.to_pandas()
    if frame.duplicated(list(contract.key)).any():
        problems.append(f"duplicate keys on ({', '.join(contract.key)})")
    if day is not None and contract.row_day is not None and len(frame):
        days = set(contract.row_day(frame).dropna().unique())
        if days - {day}:
            problems.append(f"rows of other days: {sorted(days - {day})}")
    return problems
