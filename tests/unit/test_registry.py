"""Plugin lookup: lazy import, "did you mean", and naming what to install."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lwr import registry
from lwr.errors import ConfigurationError
from lwr.managers.base import Manager
from lwr.managers.local import QueuedPythonManager, UnqueuedManager
from lwr.registry import MANAGERS, SCHEDULERS, SHELLS, STAGING_ACTIONS, lookup


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for throw-away plugin modules, removed again afterwards."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        if name.startswith("lwrtest_"):
            del sys.modules[name]
    importlib.invalidate_caches()


def test_local_managers_resolve_to_their_classes() -> None:
    assert lookup("job manager type", MANAGERS, "queued_python") is QueuedPythonManager
    assert lookup("job manager type", MANAGERS, "unqueued") is UnqueuedManager


def test_registered_type_names_match_their_aliases() -> None:
    for alias in ("queued_python", "unqueued"):
        cls = lookup("job manager type", MANAGERS, alias)
        assert issubclass(cls, Manager)
        assert cls.type_name == alias


def test_unknown_alias_suggests_the_closest_one() -> None:
    with pytest.raises(ConfigurationError) as caught:
        lookup("job manager type", MANAGERS, "queued_pyhton")
    message = caught.value.message
    assert "unknown job manager type 'queued_pyhton'" in message
    assert "did you mean 'queued_python'?" in message
    assert "unqueued" in message  # the known aliases are listed


def test_unknown_alias_without_a_close_match_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        lookup("shell", SHELLS, "zzzz")
    assert "did you mean" not in caught.value.message
    assert "local" in caught.value.message and "ssh" in caught.value.message


def test_scheduler_aliases_are_case_sensitive_but_suggested() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'slurm'"):
        lookup("scheduler", SCHEDULERS, "slurmm")


def test_missing_module_names_what_to_install() -> None:
    table = {"fancy": "lwrtest_no_such_package.backend:Fancy"}
    with pytest.raises(ConfigurationError) as caught:
        lookup("job manager type", table, "fancy")
    message = caught.value.message
    assert "'fancy'" in message
    assert "'lwrtest_no_such_package'" in message
    assert "pip install lwrtest_no_such_package" in message
    assert isinstance(
        caught.value.__cause__, ImportError
    )  # the import error is chained, not swallowed


def test_missing_dependency_of_an_existing_plugin_names_the_dependency(plugin_dir: Path) -> None:
    (plugin_dir / "lwrtest_plugin_a.py").write_text(
        "import lwrtest_absent_dep\nclass Plugin: pass\n"
    )
    with pytest.raises(ConfigurationError) as caught:
        lookup("shell", {"a": "lwrtest_plugin_a:Plugin"}, "a")
    assert "'lwrtest_absent_dep'" in caught.value.message
    assert "pip install lwrtest_absent_dep" in caught.value.message


def test_install_hints_replace_the_generic_advice(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry.INSTALL_HINTS, "lwrtest_libdrm", "install the vendor's libdrm first"
    )  # type: ignore[index]
    (plugin_dir / "lwrtest_plugin_b.py").write_text("import lwrtest_libdrm.sub\n")
    with pytest.raises(ConfigurationError, match="install the vendor's libdrm first"):
        lookup("job manager type", {"b": "lwrtest_plugin_b:Plugin"}, "b")


def test_known_install_hint_for_drmaa() -> None:
    assert "DRMAA_LIBRARY_PATH" in registry.INSTALL_HINTS["drmaa"]


def test_a_missing_lwr_module_is_reported_as_not_in_this_version() -> None:
    with pytest.raises(ConfigurationError, match="not available in this version of LWR"):
        lookup("job manager type", {"x": "lwr.managers.lwrtest_absent:X"}, "x")


def test_a_third_party_package_whose_name_starts_with_lwr_is_still_named_for_install(
    plugin_dir: Path,
) -> None:
    (plugin_dir / "lwrtest_plugin_c.py").write_text("import lwrap_not_installed\n")
    with pytest.raises(ConfigurationError) as caught:
        lookup("shell", {"c": "lwrtest_plugin_c:Plugin"}, "c")
    assert "pip install lwrap_not_installed" in caught.value.message


def test_a_missing_class_is_a_configuration_error(plugin_dir: Path) -> None:
    (plugin_dir / "lwrtest_plugin_d.py").write_text("class Other: pass\n")
    with pytest.raises(ConfigurationError, match="Renamed"):
        lookup("shell", {"d": "lwrtest_plugin_d:Renamed"}, "d")


def test_lookup_imports_lazily(plugin_dir: Path) -> None:
    (plugin_dir / "lwrtest_plugin_e.py").write_text("class Plugin: pass\n")
    table = {"e": "lwrtest_plugin_e:Plugin"}
    assert "lwrtest_plugin_e" not in sys.modules
    cls = lookup("shell", table, "e")
    assert cls.__name__ == "Plugin"
    assert "lwrtest_plugin_e" in sys.modules


@pytest.mark.parametrize(
    ("family", "table"),
    [
        ("manager", MANAGERS),
        ("shell", SHELLS),
        ("scheduler", SCHEDULERS),
        ("staging action", STAGING_ACTIONS),
    ],
)
def test_every_target_is_module_colon_class(family: str, table: dict[str, str]) -> None:
    for alias, target in table.items():
        module, sep, cls = target.partition(":")
        assert sep and module.startswith("lwr.") and cls.isidentifier(), (family, alias, target)


def test_every_remote_action_has_a_mover() -> None:
    """Each server-side action the client knows is served by a Mover subclass of that name."""
    from lwr.staging.actions import ACTION_SPECS, Staging
    from lwr.staging.movers import Mover

    remote = {name for name, spec in ACTION_SPECS.items() if spec.staging is Staging.REMOTE}
    assert remote == set(STAGING_ACTIONS)
    for alias in STAGING_ACTIONS:
        mover = lookup("staging action", STAGING_ACTIONS, alias)
        assert issubclass(mover, Mover) and mover.action_type == alias
