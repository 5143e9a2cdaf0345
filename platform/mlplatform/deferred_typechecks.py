"""Feast's argument checks, paid for when they run rather than when Feast is imported.

Feast checks the arguments of its definitions (`FeatureView`, `Entity`, `Field`, the data sources)
with typeguard's `@typechecked`. That decorator instruments a function when it is applied: it reads,
parses and recompiles the source of the function's whole module, once for each function, and a
decorated class has every annotated method instrumented that way. So `import feast` spends about
half its time in typeguard (typeguard's issue #468), in every process that imports it: each run
of the pipeline, each run the daemon starts, `serve` and the stream's consumer.

`install()` puts a deferred `@typechecked` in typeguard's place before Feast is imported: each
decorated function is instrumented by typeguard itself the first time it is called. The checks are
the same ones, on the same calls; a process pays only for the functions it calls. Another library
that uses typeguard in the same process gets the same deferral.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any


def _is_method_of(obj: Any, cls: type) -> bool:
    return (inspect.isfunction(obj) and obj.__module__ == cls.__module__
            and obj.__qualname__.startswith(cls.__qualname__ + "."))


def _deferred(function: Any, instrument: Any, options: dict) -> Any:
    """`function`, instrumented by typeguard at its first call."""
    checked = None

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal checked
        if checked is None:  # two threads may both instrument it once: the same code either way
            checked = instrument(function, **options)
        return checked(*args, **kwargs)

    return call


def deferred_typechecked(instrument: Any):
    """A drop-in for typeguard's `typechecked` (functions, methods, properties and classes) that
    hands each function to `instrument` (typeguard's own) at its first call."""

    def typechecked(target: Any = None, **options: Any) -> Any:
        if target is None:  # `@typechecked(...)` with options
            return functools.partial(typechecked, **options)
        if inspect.isclass(target):  # as typeguard does: each annotated method of the class itself
            for name, attr in list(target.__dict__.items()):
                if _is_method_of(attr, target):
                    setattr(target, name, _deferred(attr, instrument, options))
                elif isinstance(attr, (classmethod, staticmethod)) and _is_method_of(attr.__func__, target):
                    setattr(target, name, type(attr)(_deferred(attr.__func__, instrument, options)))
                elif isinstance(attr, property):
                    parts = {part: getattr(attr, part) for part in ("fget", "fset", "fdel")}
                    parts = {part: _deferred(f, instrument, options) if _is_method_of(f, target) else f
                             for part, f in parts.items()}
                    setattr(target, name, type(attr)(**parts, doc=attr.__doc__))
            return target
        if isinstance(target, (classmethod, staticmethod)):
            return type(target)(_deferred(target.__func__, instrument, options))
        return _deferred(target, instrument, options)

    typechecked.deferred = True
    return typechecked


def install() -> None:
    """Defer typeguard's instrumentation in this process (a no-op without typeguard, or when done)."""
    try:
        import typeguard
    except ImportError:
        return
    if not getattr(typeguard.typechecked, "deferred", False):
        typeguard.typechecked = deferred_typechecked(typeguard.typechecked)
