from __future__ import annotations

import pytest

from pointforge.registry import Registry, RegistryError


def test_register_and_build() -> None:
    reg = Registry("widget")

    @reg.register("square")
    def square(x: int) -> int:
        return x * x

    assert reg.build("square", 3) == 9
    assert "square" in reg and reg.names() == ["square"]


def test_unknown_name_lists_names_and_suggests() -> None:
    reg = Registry("model")
    reg.register("magicpoint")(lambda: 1)
    reg.register("superpoint")(lambda: 2)
    with pytest.raises(RegistryError) as err:
        reg.get("magicpiont")
    msg = str(err.value)
    assert "unknown model 'magicpiont'" in msg
    assert "Did you mean 'magicpoint'?" in msg
    assert "magicpoint, superpoint" in msg


def test_duplicate_name_is_an_error_unless_identical() -> None:
    reg = Registry("hook")

    class A: ...

    class B: ...

    reg.register("a")(A)
    reg.register("a")(A)  # identical object: idempotent
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a")(B)


def test_global_registries_are_populated() -> None:
    import pointforge.tasks
    from pointforge.registry import DATASETS, HOOKS, LOSSES, MODELS, TASKS

    assert "magicpoint" in TASKS and "magicpoint" in MODELS and "superpoint" in MODELS
    assert "synthetic_shapes" in DATASETS and "detector_ce" in LOSSES
    import pointforge.engine.hooks  # noqa: F401

    assert {"PeriodicCheckpointer", "EvalHook", "ProgressBar"} <= set(HOOKS.names())
