"""The landing zone, where the feed delivers files, and the quarantine beside it.

Layout:
    landing/reference/<table>.csv           reference tables, re-delivered whole when they change
    landing/<table>/<YYYY-MM-DD>.csv        daily tables, one file per day
    quarantine/<same relative path>         a file that broke its contract ...
    quarantine/<...>.csv.reason.json        ... and why, when, and by which run
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlplatform.ingest.files import write_bytes_atomically

REFERENCE_DIR = "reference"
REASON_SUFFIX = ".reason.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        folder = self.root / table
        return sorted(p.stem for p in folder.glob("*.csv")) if folder.exists() else []

    def quarantine(self, landed: Path, reason: dict) -> Quarantined:
        """Move a landed file to quarantine and write its reason beside it; never overwrite one."""
        target = self.quarantine_root / landed.relative_to(self.root)
        if target.exists():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            target = target.with_name(f"{target.stem}.{stamp}{target.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(landed, target)
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
