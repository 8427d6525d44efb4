"""The package's shape: its shekel plugin, the supported opentelemetry-api range, its names."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import shekel_otel
from shekel.plugins import plugin_manager
from shekel_otel import package

PACKAGE = Path(shekel_otel.__file__).parent


def test_the_plugin_is_registered_through_the_entry_point() -> None:
    plugin = plugin_manager().get_plugin("otel")
    assert plugin is not None
    assert plugin.__name__ == "shekel_otel._plugin"


def test_the_public_names() -> None:
    assert sorted(shekel_otel.__all__) == [
        "METER_NAME",
        "UnsupportedVersionWarning",
        "__version__",
        "instrument",
        "supported",
        "uninstrument",
    ]
    assert shekel_otel.METER_NAME == "shekel_otel"
    assert shekel_otel.__version__ == version("shekel-otel")
    assert (PACKAGE / "py.typed").is_file()


def test_the_installed_opentelemetry_api_is_supported() -> None:
    assert package.supported()
    assert version("opentelemetry-api").split(".")[0] == "1"


def test_an_unsupported_opentelemetry_api_reports_nothing_and_says_so() -> None:
    code = (
        "import warnings, shekel\n"
        "from shekel_otel import package\n"
        "package._instruments = ('opentelemetry-api < 1',)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    with shekel.budget(name='a'):\n"
        "        pass\n"
        "    with shekel.budget(name='b'):\n"
        "        pass\n"
        "print([str(w.message) for w in caught])\n"
        "manager = shekel.plugins.plugin_manager()\n"
        "print(sorted(h for h in dir(manager.hook) if h.startswith('shekel_') and any(\n"
        "    type(i.plugin).__module__.startswith('shekel_otel')\n"
        "    for i in getattr(manager.hook, h).get_hookimpls())))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    warned, hooks = done.stdout.splitlines()
    assert "outside the range shekel-otel supports" in warned
    assert "shekel-otel reports nothing" in warned
    assert warned.count("opentelemetry-api") == 2  # one warning, naming the package twice
    assert hooks == "[]"


def test_the_readme_stays_short() -> None:
    readme = PACKAGE.parents[1] / "README.md"
    assert len(readme.read_text().splitlines()) <= 80
