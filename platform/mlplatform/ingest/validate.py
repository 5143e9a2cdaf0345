"""Checks a landing file against its contract and types its rows.

`validate_csv` either returns the typed good rows with the rejected ones beside them, or raises
`ContractViolation` naming the problem: a file-level fault (its bytes, CSV structure, columns, types,
keys or day) rejects the whole file; rows breaking row rules are set aside unless there are too many.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from mlplatform.ingest.contract import NULL_TOKENS, Column, TableContract

# How many examples an error message quotes.
_EXAMPLES = 3


class ContractViolation(Exception):
    """A landing file broke its contract; `kind` says how, `problem` says it in words."""

    def __init__(self, kind: str, problem: str):
        super().__init__(problem)
        self.kind = kind
        self.problem = problem


@dataclass(frozen=True)
class ValidatedTable:
    rows: pa.Table  # the good rows, typed, in the contract's column order
    rejects: pd.DataFrame  # the rejected rows as delivered, with `_line` and `_reason`
    rows_read: int
    reject_reasons: dict[str, int]

    @property
    def reject_share(self) -> float:
        return len(self.rejects) / self.rows_read if self.rows_read else 0.0


def validate_csv(contract: TableContract, data: bytes, *, day: str | None = None,
                 max_reject_share: float = 0.05) -> ValidatedTable:
    """Validate one landing file's bytes against `contract` (and `day`, for daily tables)."""
    text = _decode(data)
    header, lines, records = _parse(text)
    _check_columns(contract, header)
    raw = pd.DataFrame(records, columns=header, dtype=object)
    raw.index = pd.Index(lines, name="_line")
    raw = raw.apply(lambda s: s.str.strip()).where(lambda f: ~f.isin(NULL_TOKENS), None)
    typed = _typed(contract, raw)
    if contract.is_daily:
        if day is None:
            raise ValueError(f"{contract.table} is a daily table: validate_csv needs the file's day")
        _check_day(contract, typed, day)
    _check_keys(contract, typed)

    reasons = _row_rule_breaks(contract, typed)
    rejected = reasons != ""
    rows_read = len(typed)
    n_rejected = int(rejected.sum())
    reason_counts = _count_reasons(reasons[rejected])
    if rows_read and n_rejected / rows_read > max_reject_share:
        raise ContractViolation(
            "too_many_rejects",
            f"{n_rejected} of {rows_read} rows ({n_rejected / rows_read:.1%}) break row rules, above "
            f"the {max_reject_share:.1%} limit: " + _summarize(reason_counts))
    good = typed[~rejected]
    if len(good) < contract.min_rows:
        raise ContractViolation(
            "too_few_rows", f"{len(good)} valid data rows; the contract needs at least {contract.min_rows}")

    rejects = raw[rejected].astype("string").reset_index()
    rejects["_reason"] = reasons[rejected].to_numpy()
    table = pa.Table.from_pandas(good.reset_index(drop=True), schema=contract.arrow_schema(),
                                 preserve_index=False)
    return ValidatedTable(rows=table, rejects=rejects, rows_read=rows_read,
                          reject_reasons=reason_counts)


def _decode(data: bytes) -> str:
    if not data.strip():
        raise ContractViolation("empty", "the file is empty" if not data else
                                "the file holds only white space")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ContractViolation("corrupt", f"binary data, not CSV: a NUL byte at offset {nul}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ContractViolation(
            "encoding", f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start} cannot be "
            "decoded (corrupt, compressed, or in another encoding)") from None
    if not text.endswith(("\n", "\r")):
        raise ContractViolation("truncated", "truncated: the last line has no line end, so the file "
                                "was cut short in transfer")
    return text


def _parse(text: str) -> tuple[list[str], list[int], list[list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    lines: list[int] = []
    records: list[list[str]] = []
    ragged: list[tuple[int, int]] = []
    try:
        for fields in reader:
            if not fields or fields == [""]:
                continue  # a blank line holds no row
            if header is None:
                header = [f.strip() for f in fields]
                continue
            if len(fields) != len(header):
                ragged.append((reader.line_num, len(fields)))
            lines.append(reader.line_num)
            records.append(fields)
    except csv.Error as err:
        raise ContractViolation("malformed", f"malformed CSV at line {reader.line_num}: {err}") from None
    if header is None:
        raise ContractViolation("empty", "the file has no header line")
    if ragged:
        last_line, n = ragged[-1]
        if len(ragged) == 1 and lines and last_line == lines[-1]:
            raise ContractViolation(
                "truncated", f"truncated: the last row (line {last_line}) has {n} of {len(header)} fields")
        examples = ", ".join(f"line {ln} has {n}" for ln, n in ragged[:_EXAMPLES])
        raise ContractViolation(
            "malformed", f"{len(ragged)} rows do not have the header's {len(header)} fields ({examples})")
    return header, lines, records


def _check_columns(contract: TableContract, header: list[str]) -> None:
    duplicated = sorted({h for h in header if header.count(h) > 1})
    missing = [c for c in contract.column_names if c not in header]
    unexpected = [h for h in header if h not in contract.column_index]
    problems = []
    if missing:
        problems.append("missing columns: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected columns: " + ", ".join(unexpected))
    if duplicated:
        problems.append("repeated columns: " + ", ".join(duplicated))
    if problems:
        raise ContractViolation("columns", "; ".join(problems) + f" (the {contract.table} contract has: "
                                + ", ".join(contract.column_names) + ")")


def _typed(contract: TableContract, raw: pd.DataFrame) -> pd.DataFrame:
    typed = {}
    problems = []
    for column in contract.columns:
        values, bad = _cast(column, raw[column.name])
        if bad.any():
            examples = ", ".join(f"{v!r} on line {ln}" for ln, v in raw[column.name][bad].head(_EXAMPLES).items())
            problems.append(f"column {column.name}: {int(bad.sum())} values are not {column.type} ({examples})")
        typed[column.name] = values
    if problems:
        raise ContractViolation("types", "wrongly typed values: " + "; ".join(problems))
    return pd.DataFrame(typed, index=raw.index)


def _cast(column: Column, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column's values in its type, and where a present value would not convert."""
    present = values.notna()
    if column.type == "string":
        return values.astype("string"), pd.Series(False, index=values.index)
    if column.type == "timestamp":
        cast = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        return cast.astype("datetime64[us, UTC]"), present & cast.isna()
    numbers = pd.to_numeric(values, errors="coerce")
    bad = present & ~np.isfinite(numbers.astype("float64"))  # unparsable (NaN) or infinite
    if column.type == "int":
        bad |= present & numbers.notna() & (numbers % 1 != 0)
        return numbers.where(~bad).astype("Float64").astype("Int64"), bad
    return numbers.where(~bad).astype("Float64"), bad


def _check_day(contract: TableContract, typed: pd.DataFrame, day: str) -> None:
    assert contract.row_day is not None
    days = contract.row_day(typed).fillna("an unknown day")
    other = days != day
    if other.any():
        counts = days[other].value_counts()
        summary = ", ".join(f"{n} on {d}" for d, n in counts.head(_EXAMPLES).items())
        raise ContractViolation(
            "wrong_day", f"{int(other.sum())} of {len(days)} rows belong to another day than the "
            f"file's day {day} ({summary}; first on line {days[other].index[0]})")


def _check_keys(contract: TableContract, typed: pd.DataFrame) -> None:
    keys = typed[list(contract.key)]
    complete = keys.notna().all(axis=1)
    duplicated = keys[complete].duplicated(keep=False)
    if duplicated.any():
        dups = keys[complete][duplicated]
        first = dups.iloc[0]
        same = dups[(dups == first).all(axis=1)].index.tolist()
        key_text = ", ".join(f"{k}={first[k]}" for k in contract.key)
        raise ContractViolation(
            "duplicate_keys", f"{int(duplicated.sum())} rows share a key ({', '.join(contract.key)}); "
            f"e.g. {key_text} on lines {', '.join(map(str, same[:_EXAMPLES]))}")


def _row_rule_breaks(contract: TableContract, typed: pd.DataFrame) -> pd.Series:
    """Per row, the rules it breaks joined by '; ' (empty where it keeps them all)."""
    reasons = pd.Series("", index=typed.index, dtype=object)

    def note(mask: pd.Series, reason: str) -> None:
        nonlocal reasons
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            reasons = reasons.where(~mask, reasons + "; " + reason)

    for c in contract.columns:
        values = typed[c.name]
        if c.required or c.name in contract.key:
            note(values.isna(), f"{c.name} is missing")
        if c.min is not None:
            note(values < c.min, f"{c.name} below {c.min:g}")
        if c.max is not None:
            note(values > c.max, f"{c.name} above {c.max:g}")
        if c.allowed is not None:
            note(values.notna() & ~values.isin(c.allowed), f"{c.name} not one of {sorted(c.allowed)}")
    for rule in contract.row_rules:
        note(~rule.holds(typed).fillna(True).astype(bool), f"{rule.name}: {rule.description}")
    return reasons.str.removeprefix("; ").astype(str)


def _count_reasons(reasons: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text in reasons:
        for reason in text.split("; "):
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _summarize(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} ({n})" for reason, n in list(counts.items())[:_EXAMPLES])
