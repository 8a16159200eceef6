"""The benchmarks check themselves without running: every one imports and answers `--help`, and
bench/README.md, the result files, the commands quoted in the docs and `make bench` agree.

Running a benchmark takes minutes to hours (bench/README.md); nothing here measures anything.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import common
from tests.test_layers import imports_in

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
ROOMS = ("method", "system")
BENCHMARKS = sorted(
    f"bench.{room}.{path.stem}" for room in ROOMS for path in (BENCH / room).glob("*.py") if path.stem != "__init__"
)
ROW = re.compile(r"^\| `python -m (bench\.[\w.]+)` \|(.*)\|\s*$", re.MULTILINE)
QUOTED_COMMAND = re.compile(r"-m (bench\.[\w.]+)")


def readme_rows() -> dict[str, list[str]]:
    """bench/README.md's table: module -> its other cells."""
    text = (BENCH / "README.md").read_text(encoding="utf-8")
    return {module: [cell.strip() for cell in rest.split("|")] for module, rest in ROW.findall(text)}


def test_there_are_benchmarks_in_both_rooms() -> None:
    assert {module.split(".")[1] for module in BENCHMARKS} == set(ROOMS)


@pytest.mark.parametrize("module", BENCHMARKS)
def test_every_benchmark_imports_and_its_help_says_what_it_measures_writes_and_reads(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    benchmark = importlib.import_module(module)
    with pytest.raises(SystemExit) as exited:
        benchmark.main(["--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith(f"usage: python -m {module} ")
    summary = (benchmark.__doc__ or "").strip().splitlines()[0]
    assert summary and summary in help_text  # what it measures: the module's docstring
    writes = re.search(r"^writes: (.+)$", help_text, re.MULTILINE)
    data = re.search(r"^data: (.+)$", help_text, re.MULTILINE)
    assert writes and data, help_text


def test_bench_readme_lists_every_benchmark_and_nothing_else() -> None:
    assert sorted(readme_rows()) == BENCHMARKS


def test_every_result_file_has_its_benchmark_in_bench_readme_and_every_file_named_there_exists() -> None:
    named = {name for cells in readme_rows().values() for name in re.findall(r"`(\w+\.(?:json|md|png))`", cells[0])}
    results = {
        path.name
        for path in (BENCH / "results").iterdir()
        if path.suffix in (".json", ".md", ".png") and "_quick." not in path.name  # --quick smoke runs' files
    }
    assert named - results == set(), "named in bench/README.md but not in bench/results/"
    assert results - named == set(), "in bench/results/ but no benchmark in bench/README.md writes it"


def test_make_bench_runs_the_benchmarks_bench_readme_says_it_runs() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^bench:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target, "no bench target in the Makefile"
    run = {m for line in target.group(1).splitlines() for m in QUOTED_COMMAND.findall(line)}
    said = {module for module, cells in readme_rows().items() if cells[-1].startswith("yes")}
    left_out = {module for module, cells in readme_rows().items() if cells[-1].startswith("no: ")}
    assert run == said
    assert said | left_out == set(BENCHMARKS)


def test_every_bench_command_quoted_in_the_docs_and_results_names_a_benchmark() -> None:
    documents = [ROOT / "README.md", BENCH / "README.md", *sorted((BENCH / "results").glob("*.md"))]
    documents += sorted((ROOT / "docs").glob("*.md"))
    quoted = {(path.name, m) for path in documents for m in QUOTED_COMMAND.findall(path.read_text(encoding="utf-8"))}
    assert quoted, "no command found: the pattern is wrong"
    assert {(name, module) for name, module in quoted if module not in BENCHMARKS} == set()


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_sections_bench_readme_points_to_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    anchors = {slug(line.lstrip("#")) for line in readme.splitlines() if line.startswith("#")}
    linked = set(re.findall(r"\(\.\./README\.md#([\w-]+)\)", (BENCH / "README.md").read_text(encoding="utf-8")))
    assert linked and linked - anchors == set()


def test_method_benchmarks_and_the_shared_helpers_use_the_method_only() -> None:
    sources = [*sorted((BENCH / "method").glob("*.py")), BENCH / "common.py"]
    for path in sources:
        package = "bench.method" if path.parent.name == "method" else "bench"
        imported = imports_in(path.read_text(encoding="utf-8"), package)
        bad = sorted(t for t in imported if t.split(".")[0] in ("bot", "storage") or t.startswith("bench.system"))
        assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def test_benchmarks_take_their_paths_from_bench_common() -> None:
    # A module that counts parents of its own file breaks when it moves (bench/storage.py's data
    # path did when it became bench/system/store.py); REPO, RESULTS and DATA_DIR are in one place.
    for room in ROOMS:
        for path in sorted((BENCH / room).glob("*.py")):
            assert "__file__" not in path.read_text(encoding="utf-8"), path.relative_to(ROOT)


def test_a_child_started_with_project_env_imports_this_checkout(tmp_path: Path) -> None:
    # From another folder, without the project root on its path, a child finds no `bench` at all
    # and, in a git worktree whose venv is an editable install of another checkout, that one's camel.
    probe = "import importlib.util as u; print(*(u.find_spec(n).origin for n in ('bench', 'camel', 'bot', 'storage')))"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=common.project_env(),
        capture_output=True,
        text=True,
        timeout=300,  # generous: imports under a busy machine
    )
    assert found.returncode == 0, found.stderr
    assert [Path(origin).parent.parent for origin in found.stdout.split()] == [ROOT] * 4


def test_a_benchmark_runs_from_the_root_without_pythonpath() -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    shown = subprocess.run(
        [sys.executable, "-m", "bench.system.store", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # generous: imports under a busy machine
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: python -m bench.system.store ")
