"""Loss-to-loss fits (Brandfonbrener et al. 2024, arXiv 2411.12925) against the paper's notebooks.

Reads ``data/sweep.csv`` and ``data/opt_params_data.csv`` of KempnerInstitute/loss-to-loss-notebooks (no
licence file, so the data stay out of archscale) from a git directory or a checkout given on the command
line, and refits with :class:`~archscale.laws.LossToLossLaw`:

- train-to-test (notebook ``loss_relationships.ipynb`` cell 34): FineWeb-Edu validation loss → four task
  losses of the same 88 models, E_x and E_y the notebook's own Kaplan-form fits (``opt_params_data.csv``);
- train-to-train (cell 32): FineWeb-Edu validation loss → the validation loss of models of the same size
  and tokens trained on each other corpus (joined on tokens, as the notebook does);
- E with archscale's own ChinchillaLaw (Huber δ = 1e-3 on log residuals) against the notebook's
  Chinchilla-form E, and K, κ refitted with those E.

    python benchmarks/loss_to_loss.py /work/.mirror/KempnerInstitute+loss-to-loss-notebooks/repo
"""

from __future__ import annotations

import argparse
import io
import subprocess
import warnings
from pathlib import Path

import pandas as pd

from archscale.laws import ChinchillaLaw, LossToLossLaw

SOURCE = "fineweb-edu-100b"
TESTS = {  # task loss column: (name, κ, K) printed in the notebook (cell 34)
    "eval/downstream_ce_loss/hellaswag_test_ce_loss": ("HellaSwag", 1.08, 0.93),
    "eval/downstream_ce_loss/arc_easy_test_ce_loss": ("ARC-Easy", 0.36, 4.68),
    "eval/downstream_ce_loss/mmlu_humanities_test_ce_loss": ("MMLU-Humanities", 0.96, 1.14),
    "eval/downstream_ce_loss/mmlu_stem_test_ce_loss": ("MMLU-STEM", 0.53, 2.35),
}
TRAINS = {  # other corpus: (name, κ, K) printed in the notebook (cell 32)
    "fineweb-100b": ("FineWeb", 1.00, 1.01),
    "proof-pile-2": ("ProofPile 2", 1.07, 0.60),
    "slimpajama-chunk1": ("SlimPajama", 0.97, 1.05),
    "smollm-corpus": ("SmolLM Corpus", 1.01, 1.07),
    "starcoder": ("StarCoder", 1.10, 0.63),
}


def read_csv(root: Path, name: str) -> pd.DataFrame:
    """``data/NAME`` from a checkout, or from HEAD of a bare git directory (a ``fetch`` mirror)."""
    if (root / "data" / name).exists():
        return pd.read_csv(root / "data" / name)
    text = subprocess.run(["git", f"--git-dir={root}", "show", f"HEAD:data/{name}"], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip
    return pd.read_csv(io.StringIO(text))


def their_e(opt: pd.DataFrame, data: str, loss: str, kaplan: bool) -> float:
    row = opt[(opt["data"] == data) & (opt["loss_name"] == loss) & (opt["kaplan"] == kaplan)]
    return float(row["E"].iloc[0])


def our_e(sweep: pd.DataFrame, data: str, loss: str) -> float:
    rows = sweep[sweep["data"] == data].dropna(subset=[loss])
    table = pd.DataFrame({"params": rows["params"], "tokens": rows["tokens"], "loss": rows[loss]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ChinchillaLaw(grid="hoffmann").fit(table).coefficients_["sigma"]


def fit(x: pd.Series, y: pd.Series, e_x: float, e_y: float) -> dict[str, float]:
    table = pd.DataFrame({"val_loss": x.to_numpy(), "task_loss": y.to_numpy()})
    return LossToLossLaw(e_x=e_x, e_y=e_y).fit(table).coefficients_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path, help="the notebooks' checkout or git directory")
    root = parser.parse_args().repo
    sweep, opt = read_csv(root, "sweep.csv"), read_csv(root, "opt_params_data.csv")
    source = sweep[sweep["data"] == SOURCE]
    e_x = their_e(opt, SOURCE, "val_loss", kaplan=True)

    print(f"Train-to-test, {SOURCE} validation loss → task loss ({len(source)} models), notebook's E:\n")
    print("| task | E_x | E_y | κ (ours / notebook) | K (ours / notebook) |\n|---|---|---|---|---|")
    for column, (name, kappa, k) in TESTS.items():
        e_y = their_e(opt, SOURCE, column, kaplan=True)
        c = fit(source["val_loss"], source[column], e_x, e_y)
        print(f"| {name} | {e_x:.2f} | {e_y:.2f} | {c['kappa']:.2f} / {kappa:.2f} | {c['K']:.2f} / {k:.2f} |")

    print(f"\nTrain-to-train, {SOURCE} → each corpus's own validation loss (models joined on tokens):\n")
    print(
        "| corpus | pairs | E_x | E_y | κ (ours / notebook) | K (ours / notebook) |\n|---|---|---|---|---|---|"
    )
    for data, (name, kappa, k) in TRAINS.items():
        other = sweep[sweep["data"] == data][["tokens", "val_loss"]]
        joined = source[["tokens", "val_loss"]].merge(other, on="tokens", suffixes=("", "_y"))
        e_y = their_e(opt, data, "val_loss", kaplan=True)
        c = fit(joined["val_loss"], joined["val_loss_y"], e_x, e_y)
        print(
            f"| {name} | {len(joined)} | {e_x:.2f} | {e_y:.2f} | {c['kappa']:.2f} / {kappa:.2f} | "
            f"{c['K']:.2f} / {k:.2f} |"
        )

    print(
        "\nE from archscale's ChinchillaLaw (grid 'hoffmann') against the notebook's Chinchilla-form E, and"
    )
    print("train-to-test K, κ with archscale's E:\n")
    print(
        "| loss | E ours | E notebook (Chinchilla form) | E notebook (Kaplan form) | κ with our E | K with our E |"
    )
    print("|---|---|---|---|---|---|")
    ours_x = our_e(sweep, SOURCE, "val_loss")
    print(
        f"| {SOURCE} val_loss | {ours_x:.3f} | {their_e(opt, SOURCE, 'val_loss', False):.3f} | {e_x:.3f} | | |"
    )
    for column, (name, _, _) in TESTS.items():
        ours_y = our_e(sweep, SOURCE, column)
        c = fit(source["val_loss"], source[column], ours_x, ours_y)
        print(
            f"| {name} | {ours_y:.3f} | {their_e(opt, SOURCE, column, False):.3f} | "
            f"{their_e(opt, SOURCE, column, True):.3f} | {c['kappa']:.2f} | {c['K']:.2f} |"
        )


if __name__ == "__main__":
    main()
