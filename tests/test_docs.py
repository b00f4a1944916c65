"""The docs site stays true: every command has a page listing its options (generated from the
CLI by docs/hooks.py) and an example that runs here, every page is in the site's navigation,
and the README stays a short way in."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = ROOT / "docs"
spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
assert spec is not None and spec.loader is not None
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)

COMMAND_PAGES = sorted((DOCS / "commands").glob("*.md"))


def _examples(page: Path) -> list[list[str]]:
    """The `routeplan ...` lines of the bash block under the page's `<!-- example -->` marker."""
    text = page.read_text()
    m = re.search(r"<!-- example -->\s*```bash\n(.*?)```", text, re.S)
    assert m, f"{page.name}: no example block"
    return [shlex.split(line) for line in m.group(1).splitlines() if line.startswith("routeplan ")]


def test_every_command_has_a_page_with_its_options() -> None:
    marked = {m for page in COMMAND_PAGES for m in hooks.OPTIONS.findall(page.read_text())}
    assert marked == set(hooks.commands()), "each command's page carries <!-- options: NAME -->"
    for name, cmd in hooks.commands().items():
        table = hooks.options_table(name)
        for p in cmd.params:
            for decl in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ())):
                if decl.startswith("-"):
                    assert f"`{decl}`" in table, (name, decl)


@pytest.mark.parametrize("page", COMMAND_PAGES, ids=[p.stem for p in COMMAND_PAGES])
def test_command_page_example_runs(page: Path, run_cli, tmp_path, monkeypatch) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    lines = _examples(page)
    assert lines
    for argv in lines:
        code, out, err = run_cli(*argv[1:])
        assert code == 0, (" ".join(argv), out[-2000:], err[-2000:])


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", nav, re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == listed, (sorted(pages - listed), sorted(listed - pages))


def test_readme_is_short_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", readme):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), target


def test_code_cites_the_architecture_page_not_a_missing_design_file() -> None:
    cited = [p for d in ("planner", "solvers", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py")
             if "DESIGN.md" in p.read_text() and p.name != "test_docs.py"]
    assert not cited, cited
