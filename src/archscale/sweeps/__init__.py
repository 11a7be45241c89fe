"""Sweeps: YAML specs that expand to grids of training runs, and the executors that run them."""

from archscale.sweeps.spec import SpecError, SweepSpec, load_spec, order_longest_first

__all__ = ["SpecError", "SweepSpec", "load_spec", "order_longest_first"]
