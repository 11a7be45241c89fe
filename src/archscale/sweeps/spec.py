"""Sweep specs: a YAML file naming grids of runs (models × token budgets × batch sizes × LRs × seeds).

The whole spec is parsed, and every run it names is built and validated, when it is loaded, so a typo
fails before any run starts, with the path to the offending field (``grid[1].lrs[2]: ...``). Top-level
keys are defaults; each ``grid:`` block overrides them (mappings such as ``schedule:`` key by key) and
expands to its own Cartesian product, so one spec can hold a model ladder and a batch × LR grid. See
``docs/sweeps.md`` for the format.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archscale import fields
from archscale.data.corpus import known_subsets
from archscale.errors import ArchscaleError
from archscale.models import ConfigError, ModelConfig, get_preset, list_presets, scale_report
from archscale.training.run_config import RunConfig

AXES = ("models", "tokens", "tokens_per_param", "batch_sizes", "lrs", "seeds")
SETTINGS = ("seq_len", "dataset", "tokenizer", "mixture", "schedule", "eval", "optimizer",
            "micro_batch_size", "checkpoint_every_steps", "keep_checkpoints")  # fmt: skip
TOP_ONLY = ("name", "description", "grid")
# the spec's mapping sections: {spec key: RunConfig field}
SCHEDULE_KEYS = {
    "kind": "schedule",
    "warmup_steps": "warmup_steps",
    "decay_fraction": "decay_fraction",
    "min_lr_ratio": "min_lr_ratio",
}
EVAL_KEYS = {"at_tokens": "eval_at_tokens", "tokens_per_subset": "eval_tokens_per_subset"}
OPTIMIZER_KEYS = {
    "weight_decay": "weight_decay",
    "beta1": "beta1",
    "beta2": "beta2",
    "grad_clip": "grad_clip",
}
MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig))
MAX_ALIAS_GROWTH = 100_000  # nodes plus scalar characters that aliases may add to a spec as written


class SpecError(ArchscaleError):
    """The sweep spec is malformed; the message starts with the path to the field."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_document(self) -> yaml.Node:
        """The document's node graph, refused when its aliases expand it past ``MAX_ALIAS_GROWTH`` (nested
        anchors, "billion laughs", would otherwise load as a few kilobytes and print as gigabytes)."""
        node = super().compose_document()
        if _alias_growth(node) > MAX_ALIAS_GROWTH:
            raise yaml.composer.ComposerError(
                None, None, f"its aliases (*name) expand it by more than {MAX_ALIAS_GROWTH:,} nodes and "
                "characters; write the values out instead", node.start_mark,
            )  # fmt: skip
        return node


def _alias_growth(root: yaml.Node) -> int:
    """What aliases add to a composed document: its size with every alias expanded less its size as written,
    each in nodes plus scalar characters. Shared nodes are sized once (memoised) and the walk is iterative,
    so a bomb of a billion nodes is sized in a few steps."""
    expanded: dict[int, int] = {}
    written = 0
    open_nodes: set[int] = set()  # nodes whose children are being sized: the ancestors of the current one
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        if children_done:
            open_nodes.discard(id(node))
            expanded[id(node)] = 1 + sum(expanded[id(child)] for child in children)
        elif id(node) in open_nodes:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a node that contains it; a spec cannot be recursive",
                node.start_mark,
            )  # fmt: skip
        elif id(node) not in expanded:
            if isinstance(node, yaml.ScalarNode):
                expanded[id(node)] = 1 + len(node.value)
                written += expanded[id(node)]
            else:
                written += 1
                open_nodes.add(id(node))
                stack.append((node, True))
                stack.extend((child, False) for child in children)
    return expanded[id(root)] - written


def load_yaml(text: str | bytes, source: str) -> Any:
    """Plain data from YAML text (a SafeLoader that also refuses a repeated key), or a one-line SpecError
    naming ``source``."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.reader.ReaderError as err:
        raise SpecError(
            f"{source}: not a YAML text file ({err.reason} at position {err.position}); it must be UTF-8 text"
        ) from None
    except yaml.YAMLError as err:
        raise SpecError(f"{source}: invalid YAML: {err}") from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply to read; a spec needs a few levels only") from None


# ---- value parsers: YAML in, checked Python values out, errors naming the path ---------------------------
def _number(path: str, value: Any) -> float:
    return fields.number(path, value, SpecError)


def _positive(path: str, value: Any) -> float:
    return fields.real(path, value, SpecError)


def _count(path: str, value: Any, minimum: int = 1) -> int:
    return fields.count(path, value, SpecError, minimum)


def _text(path: str, value: Any) -> str:
    return fields.text(path, value, SpecError)


def _mapping(path: str, value: Any, allowed: Iterable[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{path}: must be a mapping, got {type(value).__name__} {fields.shown(value)}")
    if allowed is not None:
        for key in value:
            _check_key(path, key, allowed)
    return value


def _list(path: str, value: Any, item: Callable[[str, Any], Any]) -> tuple[Any, ...]:
    """A list of items, each parsed with its index in the path; a single value counts as a list of one."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SpecError(f"{path}: must not be empty")
    return tuple(item(f"{path}[{i}]" if isinstance(value, list) else path, v) for i, v in enumerate(values))


def _check_key(path: str, key: Any, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if key not in allowed:
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SpecError(
            f"{_join(path, fields.cut(str(key)))}: unknown key; {hint}valid keys are {sorted(allowed)}"
        )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---- models ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelEntry:
    label: str | None  # becomes RunConfig.model_name
    config: ModelConfig


def _preset(path: str, name: Any) -> ModelConfig:
    _text(path, name)
    try:
        return get_preset(name)
    except KeyError:
        raise SpecError(
            f"{path}: unknown preset {fields.shown(name)}; known presets: {', '.join(list_presets())}"
        ) from None


def _model(path: str, value: Any) -> ModelEntry:
    """A preset name, a mapping of ModelConfig fields, or ``{preset: NAME, <field>: <override>, ...}``."""
    if isinstance(value, str):
        return ModelEntry(value, _preset(path, value))
    entry = dict(_mapping(path, value, ("preset", *MODEL_FIELDS)))
    try:
        if "preset" in entry:
            preset = entry.pop("preset")
            base = _preset(_join(path, "preset"), preset)
            label = entry.pop("name", None)
            if label is None and entry:
                label = f"{preset}({', '.join(f'{k}={v}' for k, v in entry.items())})"
            return ModelEntry(label or preset, base.replace(**entry, name=label or preset))
        config = ModelConfig.from_dict(entry)
    except ConfigError as err:
        raise SpecError(f"{path}: {err}") from None
    return ModelEntry(config.name, config)


# ---- one grid ----------------------------------------------------------------------------------------
def _parse_block(path: str, block: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """Parse the axis and setting keys of one block (top level or ``grid[i]``) into checked values."""
    parsed: dict[str, Any] = {}
    for key, value in block.items():
        _check_key(path, key, allowed)
        at = _join(path, key)
        if key == "models":
            parsed[key] = _list(at, value, _model)
        elif key in ("tokens", "batch_sizes"):
            parsed[key] = _list(at, value, _count)
        elif key in ("tokens_per_param", "lrs"):
            parsed[key] = _list(at, value, _positive)
        elif key == "seeds":
            parsed[key] = _list(at, value, lambda p, v: _count(p, v, minimum=0))
        elif key in ("seq_len", "micro_batch_size", "checkpoint_every_steps"):
            parsed[key] = _count(at, value)
        elif key in ("dataset", "tokenizer"):
            parsed[key] = _text(at, value)
        elif key == "keep_checkpoints":
            parsed[key] = fields.flag(at, value, SpecError)
        elif key == "mixture":
            parsed[key] = {
                _text(at, k): _positive(_join(at, str(k)), v) for k, v in _mapping(at, value).items()
            }
        elif key == "schedule":
            parsed[key] = _schedule(at, {"kind": value} if isinstance(value, str) else value)
        elif key == "eval":
            parsed[key] = _eval(at, value)
        elif key == "optimizer":
            parsed[key] = {
                k: None if k == "grad_clip" and v is None else _number(_join(at, k), v)
                for k, v in _mapping(at, value, OPTIMIZER_KEYS).items()
            }
    if "tokens" in parsed and "tokens_per_param" in parsed:
        raise SpecError(f"{path or 'spec'}: give either tokens or tokens_per_param, not both")
    return parsed


def _schedule(path: str, value: Any) -> dict[str, Any]:
    parsers = {"kind": _text, "warmup_steps": lambda p, v: _count(p, v, minimum=0)}
    return {
        key: parsers.get(key, _number)(_join(path, key), v)
        for key, v in _mapping(path, value, SCHEDULE_KEYS).items()
    }


def _eval(path: str, value: Any) -> dict[str, Any]:
    parsers = {
        "at_tokens": lambda p, v: () if v == [] else _list(p, v, _count),  # []: at the end only
        "tokens_per_subset": _count,
    }
    return {key: parsers[key](_join(path, key), v) for key, v in _mapping(path, value, EVAL_KEYS).items()}


def _check_mixture(path: str, values: Mapping[str, Any]) -> None:
    """Refuse a mixture naming a subset its corpus does not have, when the corpus's subsets are known (built,
    or the default corpus's recipe): otherwise every run of the sweep would fail the same way."""
    if "mixture" not in values:
        return
    dataset = values.get("dataset", RunConfig.dataset)
    subsets = known_subsets(dataset)
    if subsets is None:
        return
    for key in values["mixture"]:
        if key not in subsets:
            close = difflib.get_close_matches(key, subsets, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpecError(
                f"{_join(path, 'mixture')}.{fields.cut(key)}: corpus {fields.shown(dataset)} has no such "
                f"subset; {hint}its subsets are {', '.join(subsets)}"
            )


def _merge(defaults: Mapping[str, Any], block: Mapping[str, Any]) -> dict[str, Any]:
    """Block values override defaults; mappings merge key by key; a token axis replaces the other."""
    merged = dict(defaults)
    if "tokens" in block or "tokens_per_param" in block:
        merged.pop("tokens", None)
        merged.pop("tokens_per_param", None)
    for key, value in block.items():
        merged[key] = (
            {**merged[key], **value} if key in ("schedule", "eval", "optimizer") and key in merged else value
        )
    return merged


@dataclass(frozen=True)
class Grid:
    """One Cartesian product of runs with shared settings; ``path`` locates it in the spec for errors."""

    path: str
    models: tuple[ModelEntry, ...]
    tokens: tuple[int, ...] | None  # absolute budgets, or
    tokens_per_param: tuple[float, ...] | None  # budgets relative to active non-embedding parameters
    batch_sizes: tuple[int, ...]
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    settings: Mapping[str, Any]

    @classmethod
    def from_parsed(cls, path: str, values: Mapping[str, Any]) -> Grid:
        where = f"set it in {path} or at the top level" if path else "required"
        for key in ("models", "batch_sizes", "lrs"):
            if key not in values:
                raise SpecError(f"{_join(path, key)}: missing field ({where})")
        if "tokens" not in values and "tokens_per_param" not in values:
            raise SpecError(f"{_join(path, 'tokens')}: missing field ({where}; or give tokens_per_param)")
        settings = {k: v for k, v in values.items() if k in SETTINGS}
        return cls(
            path=path or "spec",
            models=values["models"],
            tokens=values.get("tokens"),
            tokens_per_param=values.get("tokens_per_param"),
            batch_sizes=values["batch_sizes"],
            lrs=values["lrs"],
            seeds=values.get("seeds", (0,)),
            settings=settings,
        )

    def budgets(self, model: ModelConfig) -> tuple[int, ...]:
        if self.tokens is not None:
            return self.tokens
        active = scale_report(model).active_params
        return tuple(max(1, round(r * active)) for r in self.tokens_per_param)

    def expand(self) -> list[RunConfig]:
        runs = []
        for entry in self.models:
            for tokens, batch, lr, seed in itertools.product(
                self.budgets(entry.config), self.batch_sizes, self.lrs, self.seeds
            ):
                where = f"{self.path} (model {fields.cut(str(entry.label))}, tokens {tokens}, batch {batch}, lr {lr:g}, seed {seed})"
                try:
                    runs.append(self._run(entry, tokens, batch, lr, seed))
                except ConfigError as err:
                    raise SpecError(f"{where}: {err}") from None
        return runs

    def _run(self, entry: ModelEntry, tokens: int, batch: int, lr: float, seed: int) -> RunConfig:
        s = self.settings
        kwargs: dict[str, Any] = {"model": entry.config, "model_name": entry.label, "tokens": tokens,
                                  "batch_size": batch, "lr": lr, "seed": seed}  # fmt: skip
        passed = ("seq_len", "dataset", "tokenizer", "mixture", "checkpoint_every_steps", "keep_checkpoints")
        for key in passed:
            if key in s:
                kwargs[key] = s[key]
        if "micro_batch_size" in s:
            kwargs["micro_batch_size"] = min(s["micro_batch_size"], batch)  # small batches: no accumulation
        for section, run_fields in (
            ("schedule", SCHEDULE_KEYS),
            ("eval", EVAL_KEYS),
            ("optimizer", OPTIMIZER_KEYS),
        ):
            kwargs.update({run_fields[k]: v for k, v in s.get(section, {}).items()})
        # eval points past a short run's end are skipped; the end itself is always evaluated
        if "eval_at_tokens" in kwargs:
            per_step = batch * kwargs.get("seq_len", entry.config.max_seq_len)
            trained = tokens // per_step * per_step
            kwargs["eval_at_tokens"] = tuple(t for t in kwargs["eval_at_tokens"] if t <= trained)
        return RunConfig(**kwargs)


# ---- the spec ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepSpec:
    name: str
    grids: tuple[Grid, ...]
    description: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> SweepSpec:
        """Parse and fully validate a spec mapping (every run is built once, so errors surface here)."""
        if not isinstance(data, dict):
            raise SpecError(f"spec: expected a mapping at the top level, got {type(data).__name__}")
        top = {k: v for k, v in data.items() if k not in TOP_ONLY}
        if "name" not in data:
            raise SpecError("name: missing field (a name for the sweep)")
        name = _text("name", data["name"])
        description = None if data.get("description") is None else _text("description", data["description"])
        defaults = _parse_block("", top, (*AXES, *SETTINGS))
        if "grid" in data:
            blocks = data["grid"]
            if not isinstance(blocks, list) or not blocks:
                raise SpecError(f"grid: must be a non-empty list of mappings, got {fields.shown(blocks)}")
            grids = []
            for i, block in enumerate(blocks):
                path = f"grid[{i}]"
                parsed = _parse_block(path, _mapping(path, block), (*AXES, *SETTINGS))
                merged = _merge(defaults, parsed)
                _check_mixture(path if "mixture" in parsed else "", merged)
                grids.append(Grid.from_parsed(path, merged))
        else:
            _check_mixture("", defaults)
            grids = [Grid.from_parsed("", defaults)]
        spec = cls(name, tuple(grids), description)
        spec.expand()
        return spec

    @classmethod
    def from_yaml(cls, text: str | bytes, source: str = "spec") -> SweepSpec:
        """Parse YAML text, or bytes (UTF-8, or UTF-16 with a byte-order mark, as YAML allows)."""
        data = load_yaml(text, source)
        return cls.from_dict(data)

    def expand(self) -> list[RunConfig]:
        """Every run of every grid, in spec order; a run named by two grids appears once."""
        seen: dict[str, RunConfig] = {}
        for grid in self.grids:
            for run in grid.expand():
                seen.setdefault(run.run_id, run)
        return list(seen.values())


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a YAML sweep spec file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    return SweepSpec.from_yaml(path.read_bytes(), source=str(path))


def order_longest_first(runs: Iterable[RunConfig]) -> list[RunConfig]:
    """Runs by decreasing compute C = N·D, so the longest start first and the sweep ends evenly."""
    return sorted(runs, key=lambda run: run.derived()["C"], reverse=True)
