"""The data layer: corpora (the default mini-Pile or users' own text), tokenisers, token shards, sampling.

Typical use::

    corpus = load_corpus("minipile")                  # built by `archscale data build`
    tok = get_tokenizer("bpe-4096", corpus)           # trained on the train split on first use
    train = get_shards(corpus, tok, "train")
    sampler = BatchSampler(train, batch_size=32, seq_len=256, seed=0)
    x = sampler.batch(step)                           # (32, 257) int64: inputs x[:, :-1], targets x[:, 1:]
    test = eval_windows(get_shards(corpus, tok, "test"), seq_len=256, max_tokens_per_subset=100_000)

Names are loaded on first use (PEP 562): importing ``archscale.data.public`` or ``archscale.data.errors``
loads neither torch (the sampler) nor the mini-Pile builder (registry clients and format parsers).
"""

from __future__ import annotations

from archscale.lazy import lazy_names

_SOURCES: dict[str, str] = {
    "Corpus": "archscale.data.corpus",
    "build_corpus_from_documents": "archscale.data.corpus",
    "load_corpus": "archscale.data.corpus",
    "Document": "archscale.data.documents",
    "CorpusNotFoundError": "archscale.data.errors",
    "CorruptShardError": "archscale.data.errors",
    "DataError": "archscale.data.errors",
    "FetchError": "archscale.data.errors",
    "MissingToolError": "archscale.data.errors",
    "RECIPES": "archscale.data.minipile",
    "build_minipile": "archscale.data.minipile",
    "BatchSampler": "archscale.data.sampler",
    "eval_windows": "archscale.data.sampler",
    "Shards": "archscale.data.shards",
    "get_shards": "archscale.data.shards",
    "SPLITS": "archscale.data.split",
    "SplitSpec": "archscale.data.split",
    "BPETokenizer": "archscale.data.tokenizer",
    "ByteTokenizer": "archscale.data.tokenizer",
    "Tokenizer": "archscale.data.tokenizer",
    "get_tokenizer": "archscale.data.tokenizer",
    "vocab_size_for": "archscale.data.tokenizer",
    "build_corpus_from_files": "archscale.data.userdata",
    "build_corpus_from_hf": "archscale.data.userdata",
    "documents_from_files": "archscale.data.userdata",
    "documents_from_hf": "archscale.data.userdata",
}
__all__ = sorted(_SOURCES)

__getattr__, __dir__ = lazy_names(__name__, _SOURCES)
