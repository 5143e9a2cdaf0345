"""`mlplatform new-use-case NAME`: the files of a new use case, runnable as they are.

It writes a use case of the simplest useful shape, to be adapted to your data (docs/use_cases.md):
one daily table of events (an entity, a day, a value), read from `source.csv` beside the spec, and
one reference table of the entities (their segment, a categorical input), read from
`entities.csv` (examples of both are written, 150 days of made-up events by 300 entities, so the
new use case runs end to end at once); a
prediction at the end of each day an entity had events: `regression`, the sum of its values over the
next HORIZON days, or `binary`, whether it has any event in them (labels HORIZON days late); its
features, the entity's history as of that day. Every name is prefixed with the use case's, so it
sits beside the others in the shared dbt project, lake and Feast registry.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from pathlib import Path

from mlplatform.state import project_root

FIRST_DAY = date(2020, 1, 1)
DAYS = 150


class ScaffoldError(ValueError):
    pass


def _files(name: str, task: str, horizon: int) -> dict[str, str]:
    table, label = f"{name}_events", ("value_next_days" if task == "regression" else "active_next_days")
    entities = f"{name}_entities"
    metric = "rmse" if task == "regression" else "roc_auc"
    last_day = FIRST_DAY + timedelta(days=DAYS - 1)
    label_sql = ("coalesce(value_after, 0)" if task == "regression" else "coalesce(value_after, 0) > 0")
    defs = f"platform/mlplatform/defs/{name}"
    models = f"dbt_project/models/{name}"
    return {
        f"{defs}/__init__.py": f'"""The {name} use case (written by `mlplatform new-use-case`: adapt it to your data)."""\n',
        f"{defs}/defs.yaml": f"""# The {name} use case, declared (docs/use_cases.md says what each part means).
type: mlplatform.usecases.UseCase
attributes:
  name: {name}
  title: {name} (replace with what it predicts)
  hooks: mlplatform.defs.{name}.hooks
  dbt_folder: {name}
  calendar:
    timezone: UTC
    first_day: "{FIRST_DAY}"
    last_day: "{last_day}"
  feeds:
    - {{table: {table}, daily: true}}
    - {{table: {entities}}}
  prediction:
    model: fct_{name}
    key: {name}_day_id
    event_time: predicted_at_utc
    label: {label}
    label_delay_days: {horizon}
    entity_keys: [entity_id]
    output: predicted_{label}
  task:
    kind: {task}
    metric: {metric}
  features:
    service: {name}_v1
    request_time: predicted_at_utc
    tables:
      daily: [feat_{name}_history]
      reference: [feat_{name}_entity]
  model:
    experiment: {name}
    lines:
      - {{name: main, registered_model: {name}}}
    # Training-set columns are `<feature view>__<feature>`.
    categorical: [{name}_entity_attrs__segment]
    not_inputs: [{name}_day_id, entity_id, event_date]
    # Every family fitted, the best on the validation days registered (the linear one suits little data).
    family: auto
""",
        f"{defs}/hooks.py": f'''"""What the machinery calls on the {name} use case.

Optional hooks, when the use case has them (docs/use_cases.md):
    STREAM        a same-day stream (mlplatform.streaming.events.SameDayStream): how to parse an
                  event, the state its consumer keeps, the Feast views it feeds, a day's events
    parse_shift   `replay --shift TEXT`: an injected change of the landed data, to watch monitoring
"""

from mlplatform.defs.{name}.api import Request, lookup
from mlplatform.defs.{name}.contracts import CONTRACTS
from mlplatform.defs.{name}.feed import daily_file, reference_file

__all__ = ["CONTRACTS", "Request", "daily_file", "lookup", "reference_file"]
''',
        f"{defs}/contracts.py": f'''"""The contracts of the daily events file and of the entities' reference file.

The code location reads them when it loads: a row rule that needs pandas imports it in its body."""

from __future__ import annotations

from mlplatform.ingest.contract import Column, TableContract

EVENTS = TableContract(
    table="{table}",
    description="The day's events: an entity, a day, a value.",
    columns=(
        Column("entity_id", "string", "Who or what the event is about", required=True),
        Column("event_date", "string", "The day of the event (YYYY-MM-DD)", required=True),
        Column("event_number", "int", "The entity's nth event of that day", required=True, min=1),
        Column("value", "float", "The event's value", required=True, min=0),
    ),
    key=("entity_id", "event_date", "event_number"),
    row_day=lambda frame: frame["event_date"].astype("string"),
)

ENTITIES = TableContract(
    table="{entities}",
    description="Who the entities are (a reference table, delivered whole): each one's segment.",
    columns=(
        Column("entity_id", "string", "The entity", required=True),
        Column("segment", "string", "Its segment (a categorical input of the model)", required=True),
    ),
    key=("entity_id",),
)

CONTRACTS = {{EVENTS.table: EVENTS, ENTITIES.table: ENTITIES}}
''',
        f"{defs}/feed.py": f'''"""The feed: `source.csv` beside this file (entity_id,event_date,value; replace it with your data),
cut into one file a day, byte for byte the same each time; and `entities.csv` (entity_id,segment),
the reference table, delivered whole."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from functools import cache
from pathlib import Path

SOURCE = Path(__file__).with_name("source.csv")
ENTITIES = Path(__file__).with_name("entities.csv")
HEADER = b"entity_id,event_date,event_number,value\\n"


@cache
def _days() -> dict[date, bytes]:
    by_day: dict[date, list[bytes]] = defaultdict(list)
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for line in SOURCE.read_text().splitlines()[1:]:
        if not line.strip():
            continue
        entity, day, value = line.split(",")
        seen[(entity, day)] += 1
        by_day[date.fromisoformat(day)].append(f"{{entity}},{{day}},{{seen[(entity, day)]}},{{value}}\\n".encode())
    return {{day: b"".join(lines) for day, lines in by_day.items()}}


def daily_file(table: str, day: date, scale: int = 1) -> bytes:
    if scale != 1:
        raise ValueError("this use case has no synthetic copies: replay it at --scale 1")
    return HEADER + _days().get(day, b"")


def reference_file(table: str, scale: int = 1) -> bytes:
    if table != "{entities}":
        raise ValueError(f"no reference table {{table!r}} (this use case has {entities})")
    return ENTITIES.read_bytes()
''',
        f"{defs}/api.py": f'''"""What `/predict` takes for the {name} use case, and the feature lookup it makes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from pydantic import BaseModel, Field

from mlplatform.serving.lookup import Lookup


class Request(BaseModel):
    entity_id: str = Field(min_length=1, max_length=64, examples=["e001"])
    event_date: date | None = Field(default=None, description="The day the prediction follows (default: today)")


def lookup(request: Request) -> Lookup:
    day = request.event_date or datetime.now(timezone.utc).date()
    moment = datetime.combine(day, time(), tzinfo=timezone.utc) + timedelta(days=1, seconds=-1)
    return Lookup(key=f"{{request.entity_id}}-{{day:%Y%m%d}}", entities={{"entity_id": request.entity_id}},
                  event_time=moment)
''',
        f"{models}/staging/_sources.yml": f"""version: 2

sources:
  - name: raw_{name}
    schema: raw
    tables:
      - name: {table}
        meta:
          external_location: >-
            read_parquet('{{{{ env_var('MLPLATFORM_HOME', '../.mlplatform') }}}}/lake/{table}/date=*/data.parquet',
            hive_partitioning = true)
      - name: {entities}
        meta:
          external_location: "read_parquet('{{{{ env_var('MLPLATFORM_HOME', '../.mlplatform') }}}}/lake/{entities}/data.parquet')"
""",
        f"{models}/staging/stg_{entities}.sql": f"""select entity_id, segment from {{{{ source('raw_{name}', '{entities}') }}}}
""",
        f"{models}/features/feat_{name}_entity.sql": f"""{{{{ config(meta={{'export': 'whole'}}) }}}}

-- The entity's attributes. The table has no dates: its rows are valid from the start of the feed
-- (the var the platform sets from the spec's calendar).
select
    entity_id,
    cast('{{{{ var("reference_valid_from") }}}}' as timestamptz) as event_timestamp,
    segment
from {{{{ ref('stg_{entities}') }}}}
""",
        f"{models}/staging/stg_{table}.sql": f"""{{{{ config(tags=['daily'], materialized='view') }}}}

select entity_id, cast(event_date as date) as event_date, event_number, cast(value as double precision) as value
from {{{{ source('raw_{name}', '{table}') }}}}
""",
        f"{models}/marts/fct_{name}.sql": f"""{{{{ config(materialized='incremental', unique_key='event_date', tags=['daily'],
          meta={{'export': 'event_date', 'export_lookback_days': {horizon}}}) }}}}

-- One row per entity and day with events: a prediction at the end of the day, and its label over the
-- next {horizon} days, null until they have landed.
{{% set horizon = {horizon} %}}
{{% set windowed = partition_min_day() is not none and not flags.FULL_REFRESH %}}

with events as (
    select * from {{{{ ref('stg_{table}') }}}}
    {{% if windowed %}}
    where event_date between cast('{{{{ partition_min_day() }}}}' as date) - {{{{ horizon }}}}
                         and cast('{{{{ partition_max_day() }}}}' as date) + {{{{ horizon }}}}
    {{% endif %}}
),
days as (
    select entity_id, event_date, sum(value) as value from events group by entity_id, event_date
),
landed as (select max(event_date) as through from {{{{ ref('stg_{table}') }}}}),
labelled as (
    select days.*, landed.through,
        sum(value) over (partition by entity_id order by event_date
                         range between interval '1 day' following and interval '{{{{ horizon }}}} days' following) as value_after
    from days cross join landed
)
select
    entity_id || '-' || replace(cast(event_date as varchar), '-', '') as {name}_day_id,
    entity_id,
    event_date,
    timezone('UTC', cast(event_date as timestamp) + interval '1 day' - interval '1 second') as predicted_at_utc,
    case when event_date + {{{{ horizon }}}} <= through then {label_sql} end as {label}
from labelled
{{% if windowed %}}
where event_date between cast('{{{{ partition_min_day() }}}}' as date) - {{{{ horizon }}}} and cast('{{{{ partition_max_day() }}}}' as date)
{{% endif %}}
""",
        f"{models}/features/feat_{name}_history.sql": f"""{{{{ config(materialized='incremental', unique_key='event_date', tags=['daily'],
          meta={{'export': 'event_date'}}) }}}}

-- The entity's history as of the end of each day it had events (that day and the days before only).
{{% set windowed = partition_min_day() is not none and not flags.FULL_REFRESH %}}

with days as (
    select entity_id, event_date, sum(value) as value
    from {{{{ ref('stg_{table}') }}}}
    {{% if windowed %}}where event_date <= cast('{{{{ partition_max_day() }}}}' as date){{% endif %}}
    group by entity_id, event_date
),
history as (
select
    entity_id,
    event_date,
    timezone('UTC', cast(event_date as timestamp) + interval '1 day' - interval '1 second') as event_timestamp,
    value as value_today,
    cast(count(*) over to_date as double precision) as days_to_date,
    sum(value) over to_date as value_to_date,
    cast(event_date - min(event_date) over to_date as double precision) as tenure_days,
    cast(event_date - lag(event_date) over (partition by entity_id order by event_date) as double precision)
        as days_since_previous,
    sum(value) over (partition by entity_id order by event_date
                     range between interval '29 days' preceding and current row) as value_last_30d
from days
window to_date as (partition by entity_id order by event_date rows between unbounded preceding and current row)
)
select * from history
{{% if windowed %}}
where event_date between cast('{{{{ partition_min_day() }}}}' as date) and cast('{{{{ partition_max_day() }}}}' as date)
{{% endif %}}
""",
        f"feature_repo/{name}.py": f'''"""Feast definitions of the {name} use case: the entity, the views over its history and its
attributes, the service."""

import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, String

from mlplatform.usecases import load

_FEATURES = load("{name}").features
EXPORTS = Path(os.environ.get("MLPLATFORM_HOME", Path(__file__).resolve().parents[1] / ".mlplatform")) \\
    / "warehouse" / "exports"

{name}_entity = Entity(name="{name}_entity", join_keys=["entity_id"], value_type=ValueType.STRING)

{name}_history = FeatureView(
    name="{name}_history", entities=[{name}_entity], ttl=timedelta(days=366),
    source=FileSource(name="feat_{name}_history", path=str(EXPORTS / "feat_{name}_history" / "date=*" / "data.parquet"),
                      file_format=ParquetFormat(), timestamp_field="event_timestamp"),
    schema=[Field(name=n, dtype=Float64) for n in (
        "value_today", "days_to_date", "value_to_date", "tenure_days", "days_since_previous", "value_last_30d")])

# The reference table's view: valid from the start of the feed, never expiring (ttl 0).
{name}_entity_attrs = FeatureView(
    name="{name}_entity_attrs", entities=[{name}_entity], ttl=timedelta(0),
    source=FileSource(name="feat_{name}_entity", path=str(EXPORTS / "feat_{name}_entity" / "data.parquet"),
                      file_format=ParquetFormat(), timestamp_field="event_timestamp"),
    schema=[Field(name="segment", dtype=String)])

{name}_service = FeatureService(name=_FEATURES.service, features=[{name}_history, {name}_entity_attrs])
''',
    }


def example_source(seed: int = 7) -> tuple[str, str]:
    """150 days of made-up events for 300 entities, some coming back often, some rarely; and the
    entities' segments (which tell their rate, most of the time)."""
    rng = random.Random(seed)
    lines = ["entity_id,event_date,value"]
    rates = {f"e{i:03d}": rng.choice([0.05, 0.15, 0.4]) for i in range(300)}
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        for entity, rate in rates.items():
            if rng.random() < rate:
                lines.append(f"{entity},{day},{round(rng.uniform(1, 50) * (1 + rate * 4), 2)}")
    names = {0.05: "rare", 0.15: "occasional", 0.4: "frequent"}
    segments = ["entity_id,segment", *(f"{entity},{names[rate] if rng.random() < 0.7 else rng.choice(list(names.values()))}"
                                       for entity, rate in rates.items())]
    return "\n".join(lines) + "\n", "\n".join(segments) + "\n"


def scaffold(name: str, task: str = "regression", horizon: int = 30, root: Path | None = None) -> list[Path]:
    """Write the new use case's files under `root` (the checkout); refuse to overwrite anything."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ScaffoldError(f"{name!r} is not a use case name: lower-case letters, digits and _, starting with a letter")
    if task not in ("regression", "binary"):
        raise ScaffoldError(f"--task {task!r}: choose regression or binary")
    if not 1 <= horizon <= 365:
        raise ScaffoldError(f"--horizon {horizon}: between 1 and 365 days")
    root = root or project_root()
    source, entities = example_source()
    files = {**_files(name, task, horizon), f"platform/mlplatform/defs/{name}/source.csv": source,
             f"platform/mlplatform/defs/{name}/entities.csv": entities}
    existing = [path for path in files if (root / path).exists()]
    if existing:
        raise ScaffoldError(f"the use case {name!r} exists already ({root / existing[0]}); nothing was written")
    written = []
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written
