"""Evaluation protocols on frozen embeddings: linear probe, kNN, SVM cross-validation, node splits.

``graphcl.evaluate.diagnostics`` (alignment, uniformity, effective rank, ...) is a submodule, loaded on first use.
"""
from importlib import import_module
from types import ModuleType

from graphcl.evaluate.probes import evaluate_nodes, knn_probe, linear_probe, svm_cv
from graphcl.evaluate.sequence import ett_ridge, fsdd_probes, ts_svm
from graphcl.evaluate.splits import node_splits


def __getattr__(name: str) -> ModuleType:
    # Lazy so importing the probes never pulls in (or depends on) the diagnostics module.
    if name == "diagnostics":
        return import_module("graphcl.evaluate.diagnostics")
    raise AttributeError(f"module 'graphcl.evaluate' has no attribute {name!r}")


__all__ = ["ett_ridge", "evaluate_nodes", "fsdd_probes", "knn_probe", "linear_probe", "node_splits", "svm_cv",
           "ts_svm"]
