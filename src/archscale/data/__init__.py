"""The data layer: corpora (the default mini-Pile or users' own text), tokenisers, token shards, sampling.

Typical use::

    corpus = load_corpus("minipile")                  # built by `archscale data build`
    tok = get_tokenizer("bpe-4096", corpus)           # trained on the train split on first use
    train = get_shards(corpus, tok, "train")
    sampler = BatchSampler(train, batch_size=32, seq_len=256, seed=0)
    x = sampler.batch(step)                           # (32, 257) int64: inputs x[:, :-1], targets x[:, 1:]
    test = eval_windows(get_shards(corpus, tok, "test"), seq_len=256, max_tokens_per_subset=100_000)
"""

from archscale.data.corpus import Corpus, build_corpus_from_documents, load_corpus
from archscale.data.documents import Document
from archscale.data.errors import (
    CorpusNotFoundError,
    CorruptShardError,
    DataError,
    FetchError,
    MissingToolError,
)
from archscale.data.minipile import RECIPES, build_minipile
from archscale.data.sampler import BatchSampler, eval_windows
from archscale.data.shards import Shards, get_shards
from archscale.data.split import SPLITS, SplitSpec
from archscale.data.tokenizer import BPETokenizer, ByteTokenizer, Tokenizer, get_tokenizer, vocab_size_for
from archscale.data.userdata import (
    build_corpus_from_files,
    build_corpus_from_hf,
    documents_from_files,
    documents_from_hf,
)

__all__ = [
    "RECIPES",
    "SPLITS",
    "BPETokenizer",
    "BatchSampler",
    "ByteTokenizer",
    "Corpus",
    "CorpusNotFoundError",
    "CorruptShardError",
    "DataError",
    "Document",
    "FetchError",
    "MissingToolError",
    "Shards",
    "SplitSpec",
    "Tokenizer",
    "build_corpus_from_documents",
    "build_corpus_from_files",
    "build_corpus_from_hf",
    "build_minipile",
    "documents_from_files",
    "documents_from_hf",
    "eval_windows",
    "get_shards",
    "get_tokenizer",
    "load_corpus",
    "vocab_size_for",
]
