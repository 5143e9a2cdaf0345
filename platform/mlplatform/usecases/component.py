"""The use case as a Dagster component: `defs/<name>/defs.yaml` is an instance of it, and its
`build_defs` is the use case's assets, checks, jobs and sensors, built by the machinery."""

from __future__ import annotations

import dagster as dg

from mlplatform.usecases.spec import UseCaseSpec


class UseCase(UseCaseSpec, dg.Component, dg.Resolvable):
    """A use case of the platform (see `mlplatform/usecases/spec.py` for what it declares)."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from mlplatform.definitions import use_case_definitions

        return use_case_definitions(UseCaseSpec.model_validate(self.model_dump()))
