"""Tokenisers: raw UTF-8 bytes (the CPU-study default) and byte-level BPE trained on a corpus's train split.

Both keep one end-of-text id *outside* the text vocabulary (``eot_id = vocab_size - 1``): no string ever
encodes to it, so a document containing the literal text ``<|endoftext|>`` still round-trips, and document
boundaries in shards are unambiguous. ``token_bytes[i]`` is the UTF-8 length of token ``i`` (0 for the
end-of-text id), so ``sum(token_bytes[ids]) == len(text.encode())`` exactly and bits per byte can be
computed from token losses.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from archscale.data.corpus import Corpus
from archscale.data.errors import DataError
from archscale.data.io import exclusive, sha256_file, temporary_path

_BPE_SPEC = re.compile(r"^bpe-(\d+)$")
MIN_BPE_VOCAB = 260  # 256 byte tokens, a few merges, and the end-of-text id


def smallest_uint(vocab_size: int) -> np.dtype:
    """The narrowest unsigned dtype that holds every id below ``vocab_size``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


class Tokenizer(ABC):
    """What the shard builder and the trainer need from a tokeniser."""

    name: str
    vocab_size: int
    token_bytes: np.ndarray

    @property
    def eot_id(self) -> int:
        return self.vocab_size - 1

    @property
    def dtype(self) -> np.dtype:
        return smallest_uint(self.vocab_size)

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Changes whenever the same text would encode differently (shards built earlier are then stale)."""

    @abstractmethod
    def encode(self, text: str) -> list[int]: ...

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; the end-of-text id decodes to nothing."""

    @abstractmethod
    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Encode many texts at once (what the shard builder uses), as arrays of :attr:`dtype`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size})"


class ByteTokenizer(Tokenizer):
    """Ids 0-255 are the UTF-8 bytes; 256 is end-of-text (vocabulary 257)."""

    name = "bytes"
    vocab_size = 257

    def __init__(self) -> None:
        self.token_bytes = np.ones(self.vocab_size, dtype=np.int64)
        self.token_bytes[self.eot_id] = 0

    @property
    def fingerprint(self) -> str:
        return "bytes-v1"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(self.dtype) for t in texts]


class BPETokenizer(Tokenizer):
    """A Hugging Face ``tokenizers`` byte-level BPE model, plus the end-of-text id after its vocabulary."""

    def __init__(self, path: Path, vocab_size: int) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        self.path = Path(path)
        self.name = f"bpe-{vocab_size}"
        self.vocab_size = vocab_size
        self._hf = HFTokenizer.from_file(str(self.path))
        hf_size = self._hf.get_vocab_size(with_added_tokens=True)
        if hf_size > vocab_size - 1:
            raise DataError(
                f"{self.path} has {hf_size} tokens, more than {self.name} allows; delete it to retrain"
            )
        # Byte-level BPE spells every byte as one character, so a token's length is its byte count.
        self.token_bytes = np.zeros(vocab_size, dtype=np.int64)
        for token, index in self._hf.get_vocab(with_added_tokens=True).items():
            self.token_bytes[index] = len(token)
        self._fingerprint = sha256_file(self.path)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def encode(self, text: str) -> list[int]:
        return self._hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self._hf.decode([i for i in ids if i != self.eot_id], skip_special_tokens=False)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        encodings = self._hf.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=self.dtype) for e in encodings]


def train_bpe(texts: Iterable[str], vocab_size: int, out: Path, *, length: int | None = None) -> Path:
    """Train byte-level BPE with ``vocab_size - 1`` entries on ``texts`` and save it as JSON at ``out``."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_BPE_VOCAB:
        raise DataError(
            f"BPE vocabulary must be at least {MIN_BPE_VOCAB} (256 bytes + merges + eot), got {vocab_size}"
        )
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    hf.train_from_iterator(texts, trainer=trainer, length=length)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(out)
    hf.save(str(tmp))
    tmp.replace(out)
    return out


def _train_texts(corpus: Corpus) -> Iterator[str]:
    for subset in corpus.subsets:
        yield from corpus.documents(subset, "train")


def parse_spec(spec: str) -> int | None:
    """``"bytes"`` -> None; ``"bpe-4096"`` -> 4096; anything else is an error naming the accepted forms."""
    if spec == "bytes":
        return None
    match = _BPE_SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise DataError(
            f"tokenizer spec {spec!r} is not understood: use 'bytes' or 'bpe-<vocab>', e.g. 'bpe-4096'"
        )
    return int(match.group(1))


def vocab_size_for(spec: str) -> int:
    """The vocabulary a tokeniser spec yields (end-of-text included), known before any training."""
    vocab_size = parse_spec(spec)
    return ByteTokenizer.vocab_size if vocab_size is None else vocab_size


def tokenizer_path(corpus: Corpus, vocab_size: int) -> Path:
    return corpus.path / "tokenizers" / f"bpe-{vocab_size}.json"


def get_tokenizer(
    spec: str,
    corpus: Corpus | None = None,
    *,
    retrain: bool = False,
    log: Callable[[str], None] | None = None,
) -> Tokenizer:
    """A tokeniser by spec: ``"bytes"``, or ``"bpe-<vocab>"`` trained on ``corpus``'s train split on first use.

    The BPE model is saved in the corpus (``tokenizers/bpe-<vocab>.json``) and reloaded afterwards.
    """
    vocab_size = parse_spec(spec)
    if vocab_size is None:
        return ByteTokenizer()
    if corpus is None:
        raise DataError(f"{spec} is trained on a corpus: pass corpus=load_corpus(...) to get_tokenizer")
    path = tokenizer_path(corpus, vocab_size)
    with exclusive(path.with_suffix(".lock")):  # parallel workers train it once
        if retrain or not path.is_file():
            if log is not None:
                log(f"training {spec} on the train split of {corpus.path} (first use) ...")
            start = time.perf_counter()
            documents = sum(corpus.num_documents(s, "train") for s in corpus.subsets)
            train_bpe(_train_texts(corpus), vocab_size, path, length=documents)
            if log is not None:
                log(f"trained {spec} in {time.perf_counter() - start:.0f} s -> {path}")
        return BPETokenizer(path, vocab_size)
