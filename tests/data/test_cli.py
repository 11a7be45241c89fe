"""The `archscale data` sub-app, driven through Typer's test runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from archscale.cli.data import app
from archscale.data import SPLITS, build_corpus_from_documents, load_corpus

from .conftest import make_documents

runner = CliRunner()


def _corpus(tmp_path):
    return build_corpus_from_documents(make_documents(n_docs=30, seed=4), tmp_path / "corpus", name="cli")


def test_info_json_has_the_documented_shape(tmp_path):
    corpus = _corpus(tmp_path)
    result = runner.invoke(app, ["info", "--corpus", str(corpus.path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    for subset in corpus.subsets:
        entry = info["subsets"][subset]
        assert entry["documents"] == {s: corpus.num_documents(subset, s) for s in SPLITS}
        assert entry["bytes"] == {s: corpus.num_bytes(subset, s) for s in SPLITS}
    assert info["total"]["documents"]["train"] == sum(
        corpus.num_documents(s, "train") for s in corpus.subsets
    )


def test_info_table_shows_tokens_once_shards_exist(tmp_path):
    corpus = _corpus(tmp_path)
    before = runner.invoke(app, ["info", "--corpus", str(corpus.path)])
    assert before.exit_code == 0 and "tokens[" not in before.output
    assert runner.invoke(app, ["shards", "--corpus", str(corpus.path), "--tokenizer", "bytes"]).exit_code == 0
    after = runner.invoke(app, ["info", "--corpus", str(corpus.path)])
    header, _, *rows = after.output.splitlines()[2:]
    assert "documents train/val/test" in header and "tokens[bytes] M train/val/test" in header
    digits = next(r for r in rows if r.startswith("digits")).split()
    train_tokens = corpus.num_bytes("digits", "train") + corpus.num_documents(
        "digits", "train"
    )  # bytes + eot
    assert digits[-1].split("/")[0] == f"{train_tokens / 1e6:.2f}"
    info = json.loads(runner.invoke(app, ["info", "--corpus", str(corpus.path), "--json"]).output)
    assert info["subsets"]["digits"]["tokens"]["bytes"]["train"] == train_tokens


def test_tokenizer_train_and_import(tmp_path):
    corpus = _corpus(tmp_path)
    result = runner.invoke(app, ["tokenizer", "train", "--vocab", "300", "--corpus", str(corpus.path)])
    assert result.exit_code == 0, result.output
    assert "bpe-300: vocabulary 300, end-of-text id 299" in result.output
    source = tmp_path / "mine.jsonl"
    source.write_text("".join(json.dumps({"text": f"line {i}"}) + "\n" for i in range(10)))
    result = runner.invoke(app, ["import", str(source), "--out", str(tmp_path / "mine")])
    assert result.exit_code == 0, result.output
    assert load_corpus(tmp_path / "mine").subsets == ["mine"]
    again = runner.invoke(app, ["import", str(source), "--out", str(tmp_path / "mine")])
    assert again.exit_code == 2 and "--overwrite" in again.output  # a usage mistake: exit 2
    hf = ["import-hf", "json", "--data-files", str(source), "--out", str(tmp_path / "hf"), "--streaming"]
    result = runner.invoke(app, [*hf, "--max-documents", "6"])
    assert result.exit_code == 0, result.output
    hf_corpus = load_corpus(tmp_path / "hf")
    assert sum(hf_corpus.num_documents("json", s) for s in SPLITS) == 6
    shards = runner.invoke(app, ["shards", "--corpus", str(hf_corpus.path), "--split", "train"])
    assert shards.exit_code == 0 and "tokens in 1 subsets" in shards.output
    assert "bytes validation" not in shards.output and "bytes test" not in shards.output


def test_errors_are_one_clear_line(tmp_path):
    result = runner.invoke(app, ["build", "--out", str(tmp_path / "x"), "--subsets", "books,novels"])
    assert result.exit_code == 2  # usage mistakes exit 2, failures at run time 1
    assert "unknown subsets novels; choose from: books, drama" in result.output
    missing = runner.invoke(app, ["info", "--corpus", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "archscale data build" in missing.output
    listing = runner.invoke(app, ["subsets"])
    assert listing.exit_code == 0 and "code_go" in listing.output and "deb:golang-1.19-src" in listing.output
