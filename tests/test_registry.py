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
    from pointforge.registry import DATASETS, MODELS, TASKS, load_builtin

    load_builtin()
    assert {"magicpoint", "superpoint", "classification", "homography_eval"} <= set(TASKS)
    assert "magicpoint" in MODELS and "superpoint" in MODELS and "resnet18" in MODELS
    assert {"synthetic_shapes", "digits", "photo_folder", "warped_pairs"} <= set(DATASETS)


def test_params_are_kept_with_the_registration() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class P:
        depth: int = 3

    reg = Registry("thing")
    reg.register("a", params=P)(int)
    assert reg.params("a") is P
    with pytest.raises(RegistryError, match="unknown thing 'b'"):
        reg.params("b")


def test_plugin_file_is_imported_once_by_path(tmp_path) -> None:
    from pointforge.registry import MODELS, RegistryError, load_plugins

    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        "from pointforge.registry import MODELS\n"
        "@MODELS.register('plugin_model_for_registry_test')\n"
        "def make():\n    return 1\n"
    )
    load_plugins(["my_plugin.py"], base_dir=tmp_path)
    load_plugins([str(plugin)])  # same file by another spelling: not a duplicate registration
    assert MODELS.get("plugin_model_for_registry_test")() == 1
    with pytest.raises(RegistryError, match=r"plugin file .nope\.py. not found"):
        load_plugins(["nope.py"], base_dir=tmp_path)
    with pytest.raises(RegistryError, match="cannot import module 'no_such_module_xyz'"):
        load_plugins(["no_such_module_xyz"])
