"""The use cases, one folder each (Dagster's `dg` layout): `defs.yaml` declares it (the component
`mlplatform.usecases.UseCase`), its Python hooks sit beside it. Nothing here is machinery."""
