"""The lazy registry (core/registry.py): declared names are listed without importing, imported on first `get`,
and a declaration that its module contradicts, forgets or cannot import fails with a RegistryError naming it."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from avhighlights.core.errors import RegistryError
from avhighlights.core.registry import Registry


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch):
    """A fresh package on sys.path holding a registry THINGS and modules that register into it."""
    package = f"lazyreg_{uuid.uuid4().hex[:10]}"
    root = tmp_path / package
    root.mkdir()
    (root / "__init__.py").write_text("from avhighlights.core.registry import Registry\nTHINGS = Registry('thing')\n")
    modules = {
        "good": "@THINGS.register('good')\nclass Good:\n    pass\n\n@THINGS.register('good_too')\nclass GoodToo:\n"
                "    pass\n",
        "thief": "@THINGS.register('thief')\nclass Thief:\n    pass\n\n@THINGS.register('good')\nclass Impostor:\n"
                 "    pass\n",
        "broken": "import a_dependency_that_is_not_installed_xyz  # noqa: F401\n",
    }
    for name, body in modules.items():
        (root / f"{name}.py").write_text(f"from {package} import THINGS\n\n" + textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    things = importlib.import_module(package).THINGS
    yield package, things
    for module in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        del sys.modules[module]


def test_declared_names_are_listed_without_import_and_imported_on_get(plugins):
    package, things = plugins
    things.declare("good", f"{package}.good:Good")
    things.declare("good_too", f"{package}.good:GoodToo")
    assert things.names() == ["good", "good_too"] and "good" in things and "bad" not in things
    assert f"{package}.good" not in sys.modules and not things.is_loaded("good")
    cls = things.get("good")
    assert cls.__name__ == "Good" and cls.name == "good" and f"{package}.good" in sys.modules
    assert things.is_loaded("good_too")  # the same module registered it
    assert things.get("good") is cls is sys.modules[f"{package}.good"].Good


def test_load_all_imports_every_declared_module(plugins):
    package, things = plugins
    things.declare("good", f"{package}.good:Good")
    things.declare("good_too", f"{package}.good:GoodToo")
    assert {name: cls.__name__ for name, cls in things.load_all().items()} == {"good": "Good", "good_too": "GoodToo"}


def test_a_module_registering_a_name_declared_for_another_module_fails(plugins):
    package, things = plugins
    things.declare("good", f"{package}.good:Good")
    things.declare("thief", f"{package}.thief:Thief")
    with pytest.raises(RegistryError, match=rf"thing 'good' is declared as {package}\.good:Good, but "
                                            rf"{package}\.thief:Impostor registers it"):
        things.get("thief")


def test_decorator_registration_must_agree_with_the_declaration():
    things = Registry("thing")
    things.declare("x", "somewhere.else:X")

    class X:
        pass

    with pytest.raises(RegistryError, match=r"'x' is declared as somewhere\.else:X, but .*test_registry_lazy"):
        things.register("x")(X)
    assert not things.is_loaded("x")
    undeclared = things.register("y")(X)  # names nobody declared still register by decorator alone
    assert things.get("y") is undeclared and things.names() == ["x", "y"]
    with pytest.raises(RegistryError, match="registered by .*not by other.module:X as declared"):
        things.declare("y", "other.module:X")


def test_a_declared_module_that_does_not_register_the_name_fails(plugins):
    package, things = plugins
    things.declare("ghost", f"{package}.good:Ghost")
    with pytest.raises(RegistryError, match=rf"'ghost' is declared as {package}\.good:Ghost, but importing "
                                            rf"{package}\.good did not register it"):
        things.get("ghost")


@pytest.mark.parametrize("module, cause", [("broken", ModuleNotFoundError), ("not_there", ModuleNotFoundError)])
def test_a_broken_or_missing_declared_module_fails_naming_it(plugins, module: str, cause: type):
    package, things = plugins
    things.declare("it", f"{package}.{module}:It")
    with pytest.raises(RegistryError, match=rf"thing 'it': its module {package}\.{module} .*cannot be imported: "
                                            rf"ModuleNotFoundError") as info:
        things.get("it")
    assert isinstance(info.value.__cause__, cause)
    assert info.value.exit_code == 2


def test_bad_declarations_and_unknown_names_are_errors():
    things = Registry("thing")
    with pytest.raises(RegistryError, match="not 'package.module:ClassName'"):
        things.declare("a", "no_colon_here")
    things.declare("a", "pkg.mod:A")
    things.declare("a", "pkg.mod:A")  # the same declaration again is fine
    with pytest.raises(RegistryError, match="declared twice"):
        things.declare("a", "pkg.other:A")
    with pytest.raises(RegistryError, match=r"unknown thing 'b'; registered: a"):
        things.get("b")


def _package_modules(package: str) -> list[str]:
    path = importlib.import_module(package).__path__
    return [f"{package}.{info.name}" for info in pkgutil.iter_modules(path)]


@pytest.mark.parametrize("package", ["avhighlights.extractors", "avhighlights.models"])
def test_the_packages_declare_exactly_what_their_modules_register(package: str):
    """Every class a module of the package registers is declared in the package's `DECLARED`, as that class; and
    every declaration loads."""
    pkg = importlib.import_module(package)
    registry = pkg.EXTRACTORS if hasattr(pkg, "EXTRACTORS") else pkg.METHODS
    for module in _package_modules(package):
        importlib.import_module(module)
    own = {name: cls for name, cls in registry.load_all().items() if cls.__module__.startswith(f"{package}.")}
    assert {name: f"{cls.__module__}:{cls.__qualname__}" for name, cls in own.items()} == pkg.DECLARED
