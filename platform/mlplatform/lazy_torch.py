"""PyTorch for Feast, imported when Feast first asks for it rather than when Feast is imported.

Feast imports PyTorch at its own import (`feast.torch_wrapper`) for the few methods that hand
features over as tensors (`to_tensor`, the RAG retriever), none of which the platform calls. Every
process that imports Feast paid PyTorch's import with it, whether or not it scores a network: the
stream's consumer, `serve` for a champion without one, a run that applies the feature definitions.
(A daily refresh imports PyTorch on purpose while dbt runs, for its scoring step: preload.py.)

`install()` puts a module of the same name and interface (`get_torch`, `TORCH_AVAILABLE`) in its
place before Feast is imported: `get_torch()` imports PyTorch at its first call, and raises
PyTorch's own import error where it is missing. A step that scores with the network imports
PyTorch itself, as before.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

NAME = "feast.torch_wrapper"


def get_torch():
    """PyTorch, imported now if it was not yet."""
    return importlib.import_module("torch")


def install() -> None:
    """Before Feast is imported; once Feast has imported its own wrapper, nothing is changed."""
    if NAME in sys.modules:
        return
    module = types.ModuleType(NAME, __doc__)
    module.get_torch = get_torch
    module.TORCH_AVAILABLE = importlib.util.find_spec("torch") is not None
    sys.modules[NAME] = module
