"""The documentation's reference pages, written from the code itself so that they cannot drift:
every resource's settings from its fields' descriptions, a use case's spec from its model's, and
the command line from its own `--help`. The MkDocs hook (`docs/hooks.py`) puts them in place."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import BaseModel

# The resources the code location configures, with the environment prefix that overrides a field
# (`settings_from_env`), or None where the field is set in Dagster's launchpad only.
RESOURCES: dict[str, tuple[str, str | None]] = {
    "state": ("PlatformState", None),
    "raw_ingest": ("RawIngestPolicy", None),
    "model_spec": ("ModelSpec", "MLPLATFORM_MODEL"),
    "retrain_policy": ("RetrainPolicy", "MLPLATFORM_RETRAIN"),
    "stream_policy": ("StreamPolicy", "MLPLATFORM_STREAM"),
    "training_device": ("TrainingDevice", None),
}


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    return "unset" if value is None else f"`{value!r}`" if not isinstance(value, str) else f"`{value}`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def fields_table(model: type[BaseModel], env_prefix: str | None = None) -> str:
    """A Markdown table of a settings model's fields: name, default, description (and its env variable)."""
    head = "| field | default | " + ("environment | " if env_prefix else "") + "what it does |"
    rows = [head, "|---|---|" + ("---|" if env_prefix else "") + "---|"]
    for name, field in model.model_fields.items():
        env = f" `{env_prefix}_{name.upper()}` |" if env_prefix else ""
        rows.append(f"| `{name}` | {_cell(_default(field))} |{env} {_cell(field.description)} |")
    return "\n".join(rows)


def configuration_markdown() -> str:
    """Every resource of the code location, field by field."""
    from mlplatform import resources

    parts = []
    for key, (class_name, prefix) in RESOURCES.items():
        model = getattr(resources, class_name)
        doc = _cell(model.__doc__)
        parts.append(f"### `{key}` ({class_name})\n\n{doc}\n\n{fields_table(model, prefix)}\n")
    return "\n".join(parts)


def spec_markdown() -> str:
    """A use case's spec (`defs/<name>/defs.yaml`), section by section."""
    from mlplatform.usecases import spec

    parts = [f"### The spec\n\n{fields_table(spec.UseCaseSpec)}\n"]
    seen = {spec.UseCaseSpec}
    for name, field in spec.UseCaseSpec.model_fields.items():
        model = field.annotation
        for candidate in getattr(model, "__args__", (model,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel) and candidate not in seen:
                seen.add(candidate)
                parts.append(f"### `{name}`\n\n{fields_table(candidate)}\n")
                for inner in candidate.model_fields.values():
                    for sub in getattr(inner.annotation, "__args__", (inner.annotation,)):
                        if isinstance(sub, type) and issubclass(sub, BaseModel) and sub not in seen:
                            seen.add(sub)
                            parts.append(f"### `{name}` → {sub.__name__}\n\n{fields_table(sub)}\n")
    return "\n".join(parts)


def cli_markdown() -> str:
    """`mlplatform --help` and each command's, as the parser prints them."""
    from mlplatform.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = [f"```text\n{parser.format_help().rstrip()}\n```\n"]
    for name, sub in commands.choices.items():
        parts.append(f"### `mlplatform {name}`\n\n```text\n{sub.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


PLACEHOLDERS = {"{{ configuration_reference }}": configuration_markdown, "{{ spec_reference }}": spec_markdown,
                "{{ cli_reference }}": cli_markdown}


def fill(markdown: str) -> str:
    """The page with each reference placeholder replaced by its generated text."""
    for placeholder, write in PLACEHOLDERS.items():
        if placeholder in markdown:
            markdown = markdown.replace(placeholder, write())
    return markdown
