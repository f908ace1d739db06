"""The README and docs stay true and short: their generated tables are the ones the committed
evaluation makes, the README is short and has exactly the two set-up commands (CI runs the second verbatim),
its and the docs' relative links lead to files, and no page or code mentions numbered sessions or
rounds of work (figures say what was measured and how; the dated story is results/HISTORY.md)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from hyperthumb.evaluation.tables import DEFAULT_SUMMARY, TABLES, table_block, with_table

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 200
APP_COMMAND = "pip install -r requirements.txt && python -m hyperthumb lpips-weights && python app.py"
TEST_COMMAND = 'pip install -r requirements.txt && python -m hyperthumb lpips-weights && python -m pytest -q -ra -m ""'
# "session 25", "sessions 20-24", "round 23", "Round 2": work told by its number, not by what it measured.
NUMBERED_WORK = re.compile(r"\b(?:sessions?|rounds?)\s+\d", re.IGNORECASE)


def _readme() -> str:
    return README.read_text()


GENERATED_TABLES = [("headline", README), ("sharp", ROOT / "docs" / "evaluation.md")]


@pytest.mark.parametrize("name, page", GENERATED_TABLES, ids=[name for name, _ in GENERATED_TABLES])
def test_each_generated_table_is_the_one_the_committed_evaluation_makes(name, page):
    make = TABLES[name][1]
    assert table_block(page.read_text(), name) == make(DEFAULT_SUMMARY), \
        f"regenerate it: python -m hyperthumb.evaluation.tables --write {page.relative_to(ROOT)}"


def test_a_table_is_replaced_between_its_markers_only():
    readme = _readme()
    assert with_table(readme, "headline", TABLES["headline"][1](DEFAULT_SUMMARY)) == readme
    changed = with_table(readme, "headline", "| a table |\n")
    assert table_block(changed, "headline") == "| a table |\n"
    assert changed.split("<!-- headline table")[0] == readme.split("<!-- headline table")[0]
    assert table_block(readme, "sharp") is None
    with pytest.raises(ValueError, match="markers"):
        with_table(readme, "sharp", "| a table |\n")


def test_the_readme_is_short_and_keeps_its_front_matter():
    lines = _readme().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"
    front = lines[:lines.index("---", 1) + 1]
    assert front[0] == "---" and {"sdk: gradio", "app_file: app.py"} <= set(front)
    assert any(line.startswith("title: ") for line in front) and any(line.startswith("license: ") for line in front)


def test_the_readme_has_exactly_the_two_set_up_commands():
    commands = [line.strip() for line in _readme().splitlines() if line.strip().startswith("pip install -r ")]
    assert commands == [APP_COMMAND, TEST_COMMAND]
    # CI runs the test command (its pip quietly): what the README promises is what CI does.
    ci_command = (ROOT / ".ci" / "run").read_text().splitlines()[-1].strip()
    assert ci_command.replace("pip install -q -r ", "pip install -r ") == TEST_COMMAND


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_lead_to_files(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (page.parent / target.split("#")[0]).exists(), f"{page.name} links to missing {target}"


def test_no_numbered_session_or_round_is_mentioned():
    files = [README, *DOCS, ROOT / "app.py", *sorted((ROOT / "hyperthumb").rglob("*.py")),
             *sorted((ROOT / "webapp").rglob("*.py")),
             *sorted((ROOT / "tools").glob("*.py"))]
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in files for number, line in enumerate(path.read_text().splitlines(), 1)
             if NUMBERED_WORK.search(line)]
    assert not found, "say what was measured and how, not when; the dated story is results/HISTORY.md:\n" + \
        "\n".join(found)


def test_the_development_page_names_every_module():
    page = (ROOT / "docs" / "development.md").read_text()
    modules = [path.relative_to(folder) for folder in (ROOT / "hyperthumb", ROOT / "webapp")
               for path in folder.rglob("*.py") if path.name != "__init__.py"]
    missing = [str(module) for module in modules if module.name not in page]
    assert not missing, f"docs/development.md does not name {missing}"
