"""Every command `camel-bot doctor` suggests exists with that syntax: the commands are taken from
the checks' results (`CheckResult.commands`), each is run through its real parser (camel-bot's
argparse, the running bot's /camel handlers, the shell's chmod), and no other string in
bot/cli/checks.py names a command."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import camel
import storage
from bot.cli import build_parser, checks
from tests.bot.conftest import ADMIN, BotUnderTest
from tests.storage.conftest import LABELS, add_task

CHECKS_SOURCE = Path(checks.__file__)
# A command in prose: "/camel <word>" or "camel-bot <word>" (not "camel-bot's", not a file name).
NAMES_A_COMMAND = re.compile(r"(/camel|\bcamel-bot) [\w-]")


def _garble(folder: Path) -> None:
    weights = folder / camel.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 32] = bytes(32)
    weights.write_bytes(bytes(data))


def _install(tmp_path: Path, tiny_bert_dir: Path, support_adapter_dir: Path, *, v1_loads: bool) -> Path:
    """A data folder whose checks fail where doctor suggests commands: v2 active but damaged (v1
    loading or not), folders readable by others, a readable secrets file, a cache over its cap."""
    data = tmp_path / "data"
    db = storage.open_store(data / "camel.db")
    add_task(db)
    for version in (1, 2):
        folder = data / "adapters" / "support" / camel.version_folder_name(version)
        shutil.copytree(support_adapter_dir, folder)
        storage.adapters.register_adapter(
            db,
            storage.NewAdapterVersion(
                task="support", version=version, path=str(folder), parent_version=None, run_id=None, metrics={}
            ),
        )
        storage.adapters.activate_adapter(db, "support", version, reason="test")
    db.close()
    _garble(data / "adapters" / "support" / "v0002")
    if not v1_loads:
        _garble(data / "adapters" / "support" / "v0001")
    (data / "feature_cache").mkdir(exist_ok=True)
    (data / "feature_cache" / "shard.safetensors").write_bytes(b"x" * 4096)
    data.chmod(0o755)
    return data


def _suggestions(tmp_path: Path, tiny_bert_dir: Path, data: Path) -> list[checks.CheckResult]:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('SLACK_BOT_TOKEN = "xoxb-x"\n')
    secrets.chmod(0o644)
    config = tmp_path / "doctor.toml"
    config.write_text(f'[model]\nbase_model = "{tiny_bert_dir}"\n[retention]\ncache_max_bytes = 1000\n')
    env = {"CAMEL_BOT_DATA_DIR": str(data), "CAMEL_BOT_SECRETS_FILE": str(secrets)}
    return [r for r in checks.iter_checks(str(config), env) if r.commands]


def _missing_database(tmp_path: Path) -> list[checks.CheckResult]:
    env = {"CAMEL_BOT_DATA_DIR": str(tmp_path / "empty")}
    return [r for r in checks.iter_checks(None, env) if r.commands and r.name == "database"]


def _retired_label_still_in_the_file(tmp_path: Path, tiny_bert_dir: Path) -> list[checks.CheckResult]:
    """A label retired in Slack that the settings file still lists: doctor's fix names the command
    that brings it back."""
    data = tmp_path / "retired"
    db = storage.open_store(data / "camel.db")
    add_task(db)
    storage.labels.change(db, "support", "retire", ADMIN, "card_arrival")
    db.close()
    config = tmp_path / "retired.toml"
    labels = ", ".join(f'"{label}"' for label in LABELS)
    config.write_text(
        f'[model]\nbase_model = "{tiny_bert_dir}"\n'
        f'[[tasks]]\nname = "support"\nkind = "intent"\nlabels = [{labels}]\nchannels = ["C1"]\n'
    )
    env = {"CAMEL_BOT_DATA_DIR": str(data)}
    return [r for r in checks.iter_checks(str(config), env) if r.commands and r.name == "task config"]


def _crashed_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[checks.CheckResult]:
    def crash(_state: checks.DoctorState) -> list[checks.CheckResult]:
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(checks, "CHECKS", [("settings", crash, ())])
    return list(checks.iter_checks(str(tmp_path / "doctor.toml"), {}))


@pytest.fixture
def suggested(
    tmp_path: Path, tiny_bert_dir: Path, support_adapter_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> list[checks.CheckResult]:
    """Every failing result that names a command, over scenarios that reach each kind of fix."""
    found = _suggestions(
        tmp_path / "a", tiny_bert_dir, _install(tmp_path / "a", tiny_bert_dir, support_adapter_dir, v1_loads=True)
    )
    found += _suggestions(
        tmp_path / "b", tiny_bert_dir, _install(tmp_path / "b", tiny_bert_dir, support_adapter_dir, v1_loads=False)
    )
    found += _missing_database(tmp_path)
    found += _retired_label_still_in_the_file(tmp_path, tiny_bert_dir)
    found += _crashed_check(monkeypatch, tmp_path)
    return found


def test_each_fix_names_its_commands_and_every_kind_of_suggestion_is_reached(suggested) -> None:
    for result in suggested:
        assert not result.ok
        for command in result.commands:
            assert command.text in result.fix, (command, result.fix)
    texts = {c.text for r in suggested for c in r.commands}
    assert "/camel rollback 1" in texts and "/camel retrain" in texts
    assert "/camel labels unretire card_arrival" in texts
    kinds = {" ".join(shlex.split(t)[:2]) for t in texts}
    assert {"camel-bot serve", "camel-bot -v", "chmod -R", "chmod 600"} <= kinds, kinds
    adapter = next(r for r in suggested if r.name == "adapter support" and "rollback" in r.fix)
    assert "v1 loads" in adapter.fix and "v2" in adapter.detail


def test_every_suggested_camel_bot_command_parses_with_the_real_argparse(suggested) -> None:
    commands = [c for r in suggested for c in r.commands if c.where == "cli"]
    assert commands
    for command in commands:
        argv = shlex.split(command.text)
        assert argv[0] == "camel-bot"
        args = build_parser().parse_args(argv[1:])  # argparse exits on an unknown command or flag
        assert args.command in {"serve", "doctor"} and callable(args.func), command


def test_every_suggested_shell_command_is_valid_chmod(suggested, tmp_path: Path) -> None:
    commands = [c for r in suggested for c in r.commands if c.where == "shell"]
    assert commands
    for command in commands:
        argv = shlex.split(command.text)
        assert argv[0] == "chmod" and Path(argv[-1]).exists(), command
        # Run on a scratch copy: chmod itself is the parser of its mode and flags.
        target = tmp_path / "scratch"
        target.mkdir(exist_ok=True)
        subprocess.run([*argv[:-1], str(target)], check=True, capture_output=True)


def test_every_suggested_slash_command_is_accepted_by_the_running_bot(suggested, bot_with_learning) -> None:
    bot: BotUnderTest = bot_with_learning
    v1 = storage.adapters.get_adapter(bot.db, "support", 1)
    storage.adapters.register_adapter(
        bot.db,
        storage.NewAdapterVersion(task="support", version=2, path=v1.path, parent_version=1, run_id=None, metrics={}),
    )
    storage.adapters.activate_adapter(bot.db, "support", 2, reason="test")
    storage.labels.change(bot.db, "support", "retire", ADMIN, "card_arrival")
    commands = sorted({c.text for r in suggested for c in r.commands if c.where == "slack"})
    assert commands == ["/camel labels unretire card_arrival", "/camel retrain", "/camel rollback 1"]
    for text in commands:
        name, _, rest = text.partition(" ")
        assert name == "/camel"
        before = len(bot.fake.calls_of("response_url"))
        status, _ = bot.send_command(rest, user=ADMIN)
        assert status == 200
        answer = str(bot.fake.wait_for("response_url", before + 1)[before].params["text"])
        assert "I don't know" not in answer and ":warning:" not in answer, (text, answer)
    assert storage.tasks.get_task(bot.db, "support").active_version == 1
    assert storage.runs.last_run(bot.db, "support") is not None


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_no_command_is_written_into_a_fix_except_by_the_suggestion_builders() -> None:
    tree = ast.parse(CHECKS_SOURCE.read_text())
    builders = {f.__name__ for f in checks.SUGGESTIONS}
    docstrings = _docstrings(tree)
    outside: list[str] = []

    def visit(node: ast.AST, inside_builder: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = inside_builder or (isinstance(child, ast.FunctionDef) and child.name in builders)
            if isinstance(child, ast.Constant) and isinstance(child.value, str) and id(child) not in docstrings:
                if not inside and NAMES_A_COMMAND.search(child.value):
                    outside.append(child.value)
            if isinstance(child, ast.Name) and child.id == "COMMAND" and not inside:
                outside.append(f"COMMAND used at line {child.lineno}")
            visit(child, inside)

    visit(tree, False)
    assert outside == []
