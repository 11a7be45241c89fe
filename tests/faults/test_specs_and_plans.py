"""Hostile sweep specs (binary files, alias bombs, recursion, mixtures of subsets the corpus lacks) and
degenerate plan budgets (a compute too small for any model, zero or non-finite caps): each ends in one line
naming the field or option and the fix, with nothing written."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.data.corpus import Corpus
from archscale.sweeps import SweepSpec, load_spec

BASE = "name: t\nmodels: dense-25k\ntokens: 100000\nbatch_sizes: 8\nlrs: 1e-3\n"
DESIGN = ["plan", "--design-space", "--law", "krajewski2024",
          "--grid-experts", "8", "--grid-granularity", "1,2"]  # fmt: skip


@pytest.fixture(autouse=True)
def no_built_corpora(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default corpus unbuilt, whatever this machine holds: mixtures are checked against its recipe."""
    monkeypatch.setenv("ARCHSCALE_HOME", str(tmp_path / "home"))


def _billion_laughs(levels: int = 9) -> str:
    """Nine levels of nine aliases each: a few hundred bytes that expand to 9⁹ strings."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + f"\nname: *{chr(ord('a') + levels)}\n"


SPECS: dict[str, tuple[bytes, str]] = {  # file bytes, what the error line names
    "random-bytes": (random.Random(0).randbytes(4096), "spec.yaml: not a YAML text file"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "spec.yaml: not a YAML text file"),
    "utf-16-without-bom": (BASE.encode("utf-16-le"), "spec.yaml: not a YAML text file"),
    "nul-byte": (b"name: t\x00\n", "spec.yaml: not a YAML text file"),
    "deep-nesting": (("name: " + "[" * 5000 + "]" * 5000).encode(), "spec.yaml: nested too deeply"),
    "alias-bomb": (_billion_laughs().encode(), "spec.yaml: invalid YAML: its aliases"),
    "recursive-alias": (b"name: &r [*r]\n", "spec.yaml: invalid YAML: an alias refers to a node"),
    "unknown-subset": ((BASE + "mixture: {nosuchsubset: 1}\n").encode(), "mixture.nosuchsubset"),
    "misspelt-subset": ((BASE + "mixture: {book: 1}\n").encode(), "mixture.book: corpus 'minipile'"),
    "unknown-subset-in-a-grid": (
        (BASE + "mixture: {books: 1}\ngrid:\n  - {lrs: 1e-3}\n  - {mixture: {bookz: 1}}\n").encode(),
        "grid[1].mixture.bookz",
    ),
    "keep-checkpoints-every-n": ((BASE + "keep_checkpoints: 100\n").encode(), "keep_checkpoints: must be"),
    "huge-value": (("name: [" + ", ".join(["x" * 100] * 1000) + "]\n").encode(), "name: must be"),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("case", list(SPECS))
def test_a_hostile_spec_is_refused_in_one_short_line(
    one_line_error: Callable[..., str], tmp_path: Path, case: str, dry_run: bool
) -> None:
    content, named = SPECS[case]
    (tmp_path / "spec.yaml").write_bytes(content)
    line = one_line_error(["sweep", "run", "spec.yaml", *(["--dry-run"] if dry_run else [])], named)
    assert len(line) < 400, (case, len(line))  # a quoted value is cut, never echoed whole


@pytest.mark.parametrize("case", ["unknown-subset", "misspelt-subset"])
def test_an_unknown_subset_lists_the_valid_ones(
    one_line_error: Callable[..., str], tmp_path: Path, case: str
) -> None:
    (tmp_path / "spec.yaml").write_bytes(SPECS[case][0])
    line = one_line_error(["sweep", "run", "spec.yaml"], "mixture.")
    assert "books" in line and "code_go" in line
    assert ("did you mean 'books'?" in line) == (case == "misspelt-subset")


def test_a_built_corpus_checks_the_mixture_against_its_own_subsets(
    tiny_corpus: Corpus, one_line_error: Callable[..., str], tmp_path: Path
) -> None:
    """Once built, the corpus's manifest decides, not the default recipe (which has ``books``)."""
    (tmp_path / "spec.yaml").write_text(f"{BASE}dataset: {tiny_corpus.path}\nmixture: {{books: 1}}\n")
    line = one_line_error(["sweep", "run", "spec.yaml"], "mixture.books")
    assert "its subsets are code, prose" in line


def test_a_valid_mixture_still_validates(tiny_corpus: Corpus) -> None:
    """The check refuses unknown subsets only: the recipe's names before a build, a built corpus's after."""
    (run,) = SweepSpec.from_yaml(BASE + "mixture: {books: 3, code_go: 1}\n").expand()
    assert run.mixture == pytest.approx({"books": 0.75, "code_go": 0.25})
    (run,) = SweepSpec.from_yaml(
        f"{BASE}dataset: {tiny_corpus.path}\nmixture: {{code: 1, prose: 1}}\n"
    ).expand()
    assert run.mixture == pytest.approx({"code": 0.5, "prose": 0.5})
    # a corpus not built yet whose subsets nobody declared: its runs report what is missing
    (run,) = SweepSpec.from_yaml(BASE + "dataset: /nowhere/mine\nmixture: {anything: 1}\n").expand()
    assert run.mixture == {"anything": 1.0}


def test_modest_aliases_and_utf16_with_a_bom_still_load(tmp_path: Path) -> None:
    """Only an expansion past the limit is refused; UTF-16 with a byte-order mark is YAML too."""
    aliased = BASE + "grid:\n  - {schedule: &s {kind: wsd, warmup_steps: 2}}\n  - {schedule: *s, seeds: 1}\n"
    runs = SweepSpec.from_yaml(aliased).expand()
    assert [(run.schedule, run.warmup_steps, run.seed) for run in runs] == [("wsd", 2, 0), ("wsd", 2, 1)]
    (tmp_path / "spec.yaml").write_bytes(BASE.encode("utf-16"))
    assert load_spec(tmp_path / "spec.yaml").expand() == SweepSpec.from_yaml(BASE).expand()


CHINCHILLA = ["plan", "--law", "chinchilla-approach3"]
PLANS: dict[str, tuple[list[str], str]] = {  # arguments, the option the error line names
    **{
        f"compute {c}": ([*CHINCHILLA, "--compute", c], "--compute")
        for c in ("1", "0", "-1e21", "inf", "nan")
    },
    **{
        f"deepseek compute {c}": (["plan", "--law", "deepseek2024", "--compute", c], "--compute")
        for c in ("1", "-5")
    },
    **{
        f"experts {e}": ([*CHINCHILLA, "--compute", "1e21", "--experts", e], "--experts")
        for e in ("0", "nan")
    },
    **{f"design compute {c}": ([*DESIGN, "--compute", c], "--compute") for c in ("1", "0", "-inf", "nan")},
    **{
        f"memory per gpu {m}": ([*DESIGN, "--compute", "1e21", "--memory-per-gpu", m], "--memory-per-gpu")
        for m in ("0", "-1", "nan", "inf", "1e-9")
    },
    **{
        f"max total params {m}": (
            [*DESIGN, "--compute", "1e21", "--max-total-params", m],
            "--max-total-params",
        )
        for m in ("0", "nan", "inf", "2")
    },
    "router cost inf": ([*DESIGN, "--compute", "1e21", "--router-cost", "inf"], "--router-cost"),
    "width per block inf": ([*DESIGN, "--compute", "1e21", "--width-per-block", "inf"], "--width-per-block"),
}


@pytest.mark.parametrize("case", list(PLANS))
def test_a_degenerate_plan_budget_is_refused_in_one_line(
    one_line_error: Callable[..., str], case: str
) -> None:
    one_line_error(*PLANS[case])


@pytest.mark.parametrize(
    "args",
    [
        CHINCHILLA,
        ["plan", "--law", "epoch2024"],
        DESIGN,
        ["plan", "--design-space", "--law", "ludziejewski2025"],
    ],
)
def test_the_smallest_plannable_compute_it_names_is_plannable(
    one_line_error: Callable[..., str], args: list[str]
) -> None:
    """The floor in the message is the real one: it plans, and a little less is refused."""
    line = one_line_error([*args, "--compute", "1"], "--compute")
    named = re.search(r"smallest plannable compute is (\S+) FLOPs", line)
    assert named, line
    smallest = float(named[1])
    result = CliRunner().invoke(app, [*args, "--compute", repr(smallest)])
    assert result.exit_code == 0, result.output
    one_line_error([*args, "--compute", repr(smallest * 0.99)], "--compute")


MIXED = ["plan", "--design-space", "--law", "ludziejewski2025",
         "--grid-experts", "1,8,64", "--grid-top-k", "1"]  # fmt: skip


@pytest.mark.parametrize("grid", [DESIGN, MIXED], ids=["one-width", "mixed-widths"])
def test_the_smallest_cap_it_names_leaves_every_design_a_model(
    one_line_error: Callable[..., str], grid: list[str]
) -> None:
    """The cap the message asks for, in parameters or in GiB, fits one active parameter of the widest design."""
    line = one_line_error([*grid, "--compute", "1e21", "--max-total-params", "1"], "--max-total-params")
    named = re.search(r"the smallest cap is (\S+) parameters \((\S+) GiB per GPU\)", line)
    assert named, line
    for option, value in (("--max-total-params", named[1]), ("--memory-per-gpu", named[2])):
        result = CliRunner().invoke(app, [*grid, "--compute", "1e21", option, value])
        assert result.exit_code == 0, (option, result.output)
    one_line_error([*grid, "--compute", "1e21", "--max-total-params", repr(float(named[1]) * 0.99)], "cap")
