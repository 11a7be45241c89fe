"""The default corpus: a diverse "mini-Pile" of real English text and code from package registries."""

from archscale.data.minipile.build import build_minipile, default_cache
from archscale.data.minipile.recipes import RECIPES, SubsetRecipe

__all__ = ["RECIPES", "SubsetRecipe", "build_minipile", "default_cache"]
