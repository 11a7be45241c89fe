"""Each command fed its typical mistakes: a non-zero exit, one line on stderr naming the field and the fix,
no traceback, and nothing created or changed on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.store import ResultsStore
from cli_contract import invoke_one_line_error

GOOD_RUN = {"models": ["dense-100k"], "tokens": [4096], "batch_sizes": [4], "lrs": [1e-3]}


def _spec(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return name


def _cases(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "corrupt.sqlite").write_bytes(b"this is not a database" * 100)
    unsafe = _spec(tmp, "unsafe.yaml", '!!python/object/apply:os.system ["touch pwned"]\n')
    negative = _spec(
        tmp, "negative.yaml", yaml.safe_dump({"name": "x", "grid": [GOOD_RUN | {"lrs": [-1e-3]}]})
    )
    words = _spec(tmp, "words.yaml", yaml.safe_dump({"name": "x", "grid": [GOOD_RUN | {"tokens": ["many"]}]}))
    unknown = _spec(
        tmp, "unknown.yaml", yaml.safe_dump({"name": "x", "grid": [GOOD_RUN | {"models": ["gpt-5"]}]})
    )
    with ResultsStore(tmp / "empty.sqlite"):
        pass
    nowhere = _spec(
        tmp, "nowhere.yaml", yaml.safe_dump({"name": "x", "dataset": "nosuchcorpus", "grid": [GOOD_RUN]})
    )
    table = _spec(tmp, "points.csv", "params,tokens,loss\n1e7,1e9,3.5\n2e7,1e9,3.3\n4e7,2e9,3.0\n")
    return [
        (["runs", "list", "--store", "typo.sqlite"], "no results store there"),
        (["runs", "export", "out", "--store", "typo.sqlite"], "no results store there"),
        (["runs", "checkpoints", "0123456789ab", "--store", "typo.sqlite"], "no results store there"),
        (["runs", "list", "--store", "corrupt.sqlite"], "not an SQLite results store"),
        (["report", "--store", "corrupt.sqlite", "--out", "rep"], "not an SQLite results store"),
        (["report", "--store", "typo.sqlite", "--out", "rep"], "no results store there"),
        (["report", "--store", "typo.sqlite", "--bootstrap", "-5"], "--bootstrap"),
        (["report", "--store", "typo.sqlite", "--reference", "steplaw"], "--reference"),
        (["sweep", "run", unsafe, "--store", "s.sqlite"], "unsafe.yaml"),
        (["sweep", "run", negative, "--store", "s.sqlite"], "lr"),
        (["sweep", "run", words, "--store", "s.sqlite"], "tokens"),
        (["sweep", "run", unknown, "--store", "s.sqlite"], "gpt-5"),
        (["sweep", "run", "missing.yaml", "--store", "s.sqlite"], "missing.yaml"),
        (["sweep", "run", nowhere, "--store", "s.sqlite"], "no corpus at"),  # no store is created first
        (["train", nowhere, "--store", "s.sqlite"], "no corpus at"),
        (["sweep", "run", negative, "--workers", "-1"], "--workers"),
        (["train", "missing.yaml", "--store", "s.sqlite"], "missing.yaml"),
        (["models", "show", "gpt-5"], "unknown model preset 'gpt-5'"),
        (["plan", "--fit", "missing.json", "--compute", "1e20"], "--fit missing.json: no such file"),
        (["plan", "--fit", "corrupt.sqlite", "--compute", "1e20"], "--fit corrupt.sqlite: not a saved fit"),
        (
            ["plan", "--law", "chinchilla-approach3", "--compute", "1e20", "--lr-ladder", "missing.sqlite"],
            "--lr-ladder missing.sqlite: not a results store",
        ),
        (["fit", "wang", "--data", "missing.csv"], "missing.csv"),
        (["fit", "wang", "--data", "typo.sqlite"], "typo.sqlite"),
        (["fit", "nosuchlaw", "--data", "missing.csv"], "nosuchlaw"),
        (["study", "--preset", "nano", "--out", "st"], "unknown study preset 'nano'"),
        (["study", "--bootstrap", "-1", "--out", "st"], "--bootstrap"),
        (["data", "info", "--corpus", "nowhere"], "archscale data build"),
        (["export", "0123456789ab", "--out", "hf", "--store", "typo.sqlite"], "no results store there"),
        (["eval", "0123456789ab", "--tasks", "x", "--store", "typo.sqlite"], "no results store there"),
        (["models", "show", "dense-1b", "--seq-len", "-5"], "--seq-len"),
        (["models", "list", "--seq-len", "0"], "--seq-len"),
        (
            ["fit", "chinchilla", "--data", table, "--map", "parms=params"],
            "--map parms=…: 'parms' is not a column",
        ),
        (["plan", "study", "--preset", "mirco"], "unknown study preset 'mirco'"),
        (["plan", "ladder", "--evaluate", "missing.yaml"], "--evaluate"),
        (
            ["runs", "checkpoints", "abcdef", "--store", "empty.sqlite"],
            "`archscale runs list --store empty.sqlite`",
        ),
    ]


def test_every_typical_mistake_gets_one_line_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = _cases(tmp_path)
    for args, named in cases:
        invoke_one_line_error(args, named, tmp_path)


@pytest.mark.parametrize("command", [["runs"], ["sweep"], ["data"]])
def test_a_bare_command_group_shows_its_help(command):
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2 and "Usage:" in result.output and "error:" not in result.output
