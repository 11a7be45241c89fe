"""Bridges to the ecosystem: Hugging Face checkpoints and lm-evaluation-harness downstream tasks.

Each bridge imports its third-party package lazily (extras ``hf`` and ``eval``), so the core package
works without them.
"""
