"""A run the user set up wrongly is refused with an ArchscaleError that says how to fix it (the command
line prints it as one line), not a bare ValueError that surfaces as a traceback."""

from __future__ import annotations

import dataclasses

import pytest

from archscale.errors import ArchscaleError
from archscale.training.distributed import DistInfo
from archscale.training.options import TrainOptions
from archscale.training.trainer import Trainer, load_train_data
from training_helpers import make_run


def _refusal(*args, **kwargs) -> ArchscaleError:
    with pytest.raises(ArchscaleError) as caught:
        Trainer(*args, **kwargs)
    return caught.value


def test_data_of_another_tokeniser_is_refused_with_the_tokeniser_to_use(tiny_corpus, tmp_path) -> None:
    run = make_run(tiny_corpus)
    data = dataclasses.replace(load_train_data(run), vocab_size=run.model.vocab_size + 1)
    err = _refusal(run, data, tmp_path)
    assert (
        "RunConfig.model.vocab_size" in str(err)
        and err.hint == f"build the data with RunConfig.tokenizer={run.tokenizer!r}"
    )


def test_a_batch_that_does_not_split_over_the_ranks_is_refused_with_a_batch_that_does(
    tiny_corpus, tmp_path
) -> None:
    run = make_run(tiny_corpus, micro_batch_size=2)  # 8 rows: 3 ranks cannot take whole micro-batches of 2
    err = _refusal(run, load_train_data(run), tmp_path, dist_info=DistInfo(world_size=3))
    assert "RunConfig.batch_size: 8" in str(err) and err.hint == "choose a batch size divisible by 6"


def test_sharding_without_a_process_group_is_refused_with_how_to_start_one(tiny_corpus, tmp_path) -> None:
    run = make_run(tiny_corpus)
    err = _refusal(run, load_train_data(run), tmp_path, options=TrainOptions(shard=True))
    assert err.hint is not None and "torchrun --nproc-per-node" in err.hint
