"""The landing zone, where the feed delivers files, and the quarantine beside it.

Layout:
    landing/reference/<table>.csv           reference tables, re-delivered whole when they change
    landing/<table>/<YYYY-MM-DD>.csv        daily tables, one file per day
    landing/<...>.csv.manifest.json         the feed's completeness proof (bytes, rows, sha256)
    quarantine/<same relative path>         a file that broke its contract ...
    quarantine/<...>.csv.reason.json        ... and why, when, and by which run
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from mlplatform.ingest.files import write_bytes_atomically

REFERENCE_DIR = "reference"
REASON_SUFFIX = ".reason.json"
MANIFEST_SUFFIX = ".manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_rows(data: bytes) -> int:
    """Lines after the header (a last line without its newline counts)."""
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return max(0, lines - 1)


def manifest_for(data: bytes) -> dict:
    return {"bytes": len(data), "rows": data_rows(data), "sha256": sha256(data)}


def _as_day(name: str) -> date | None:
    if len(name) != 10:
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class Quarantined:
    path: Path
    reason: dict


@dataclass(frozen=True)
class LandingZone:
    root: Path
    quarantine_root: Path

    def file(self, table: str, day: str | None = None) -> Path:
        """Where the feed delivers `table` (for `day`, if it is a daily table)."""
        if day is None:
            return self.root / REFERENCE_DIR / f"{table}.csv"
        return self.root / table / f"{day}.csv"

    def days(self, table: str) -> list[str]:
        """The days delivered for a daily table: files named for a real calendar day."""
        folder = self.root / table
        return sorted(p.stem for p in folder.glob("*.csv") if _as_day(p.stem)) if folder.exists() else []

    def misnamed(self, table: str, first: date, last: date) -> list[Path]:
        """Files of a daily table whose name is no day from `first` to `last`."""
        folder = self.root / table
        if not folder.exists():
            return []
        return sorted(p for p in folder.glob("*.csv") if not first <= (_as_day(p.stem) or date.min) <= last)

    def manifest_path(self, table: str, day: str | None = None) -> Path:
        """The feed's completeness proof for a file: written after the data, it names the data's size,
        data rows and checksum, so a file cut short or changed since is told from a complete one."""
        path = self.file(table, day)
        return path.with_name(path.name + MANIFEST_SUFFIX)

    def deliver(self, table: str, day: str | None, data: bytes) -> Path:
        """Deliver a file as a feed should: the data (atomically), then its manifest."""
        path = write_bytes_atomically(self.file(table, day), data)
        write_bytes_atomically(self.manifest_path(table, day), json.dumps(manifest_for(data)).encode())
        return path

    def manifest(self, table: str, day: str | None = None) -> dict | None:
        """The file's manifest, or None when the feed sent none. One that is not valid JSON with
        `bytes`, `rows` and `sha256` raises ValueError naming it."""
        path = self.manifest_path(table, day)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            manifest = json.loads(text)
            return {"bytes": int(manifest["bytes"]), "rows": int(manifest["rows"]), "sha256": str(manifest["sha256"])}
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"manifest {path} is not JSON with bytes, rows and sha256 ({err})") from None

    def quarantine(self, landed: Path, reason: dict) -> Quarantined:
        """Move a landed file (and its manifest) to quarantine and write its reason beside it; never
        overwrite one."""
        target = self.quarantine_root / landed.relative_to(self.root)
        if target.exists():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            target = target.with_name(f"{target.stem}.{stamp}{target.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(landed, target)
        manifest = landed.with_name(landed.name + MANIFEST_SUFFIX)
        if manifest.exists():
            os.replace(manifest, target.with_name(target.name + MANIFEST_SUFFIX))
        reason = {**reason, "quarantined_at": datetime.now(timezone.utc).isoformat(),
                  "original_path": str(landed), "quarantined_path": str(target)}
        write_bytes_atomically(target.with_name(target.name + REASON_SUFFIX),
                               json.dumps(reason, indent=2).encode())
        return Quarantined(target, reason)

    def quarantined(self, table: str, day: str | None = None) -> list[Quarantined]:
        """Earlier quarantined deliveries of this file, oldest first."""
        expected = self.quarantine_root / self.file(table, day).relative_to(self.root)
        if not expected.parent.exists():
            return []
        found = []
        for reason_file in sorted(expected.parent.glob(f"{expected.stem}*{REASON_SUFFIX}")):
            data = reason_file.with_name(reason_file.name.removesuffix(REASON_SUFFIX))
            found.append(Quarantined(data, json.loads(reason_file.read_text())))
        return sorted(found, key=lambda q: q.reason.get("quarantined_at", ""))
