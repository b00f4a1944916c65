"""`make test` prints no upstream warning noise, and the filter hides only that notice."""

from __future__ import annotations

import subprocess
import sys
import warnings

from tests.conftest import ROOT


def test_litellm_import_warnings_are_filtered_by_the_pytest_configuration(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_import():\n    import litellm  # noqa: F401\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(probe)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ReadOnly" not in proc.stdout and "warning" not in proc.stdout.lower(), proc.stdout


def test_the_filter_hides_only_pydantics_readonly_notice():
    import tomllib

    from _pytest.warnings import parse_warning_filter  # type: ignore[attr-defined]

    filters = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        for f in filters:
            warnings.filterwarnings(*parse_warning_filter(f, escape=False))
        module = {"__name__": "pydantic._internal._generate_schema"}
        for message, category in [
                ("Item 'api' on TypedDict class '_X' is using the `ReadOnly` qualifier. Pydantic will not", UserWarning),
                ("Items 'a', 'b' on TypedDict class '_Y' are using the `ReadOnly` qualifier. Pydantic", UserWarning),
                ("Field name 'json' shadows an attribute in parent 'BaseModel'", UserWarning),
                ("Item 'api' on TypedDict class '_X' is using the `ReadOnly` qualifier.", DeprecationWarning)]:
            warnings.warn_explicit(message, category, "x.py", 1, module="pydantic._internal._generate_schema",
                                   module_globals=module)
        warnings.warn_explicit("Item 'api' on TypedDict class '_X' is using the `ReadOnly` qualifier.",
                               UserWarning, "y.py", 1, module="myproject.models")
    shown = [(str(w.message)[:10], w.category) for w in seen]
    # another pydantic warning, another category, another module: all still shown
    assert shown == [("Field name", UserWarning), ("Item 'api'", DeprecationWarning), ("Item 'api'", UserWarning)]
