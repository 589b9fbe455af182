"""Evaluation: metrics (:mod:`hmrkit.eval.metrics`) and benchmarks."""
