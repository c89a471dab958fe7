"""Per-epoch representation diagnostics: logged in metrics.jsonl, and a collapsed encoder is flagged."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from graphcl.config import load_config
from graphcl.train.monitor import collapse_warning, representation_stats
from graphcl.train.run import train_run

REPO = Path(__file__).resolve().parents[2]


class PairTask:
    """A task whose fixed pair is the encoder's output on two fixed inputs."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x1 = torch.randn(300, 16, generator=g)
        self.x2 = self.x1 + 0.1 * torch.randn(300, 16, generator=g)

    def diagnostic_pair(self, encoder):
        encoder.eval()
        return encoder(self.x1), encoder(self.x2)


class Constant(nn.Module):
    def forward(self, x):
        return torch.ones(x.size(0), 8)


class RankOne(nn.Module):
    def forward(self, x):
        return x[:, :1] * torch.ones(1, 8) + 5.0


def test_collapsed_encoders_are_flagged_and_a_spread_one_is_not() -> None:
    task = PairTask()
    constant = representation_stats(task, Constant(), collapse_std=0.01)
    assert constant["feature_std"] < 1e-6 and constant["effective_rank"] < 1.01 and "collapse" in constant["warning"]
    rank_one = representation_stats(task, RankOne(), collapse_std=0.01)
    assert rank_one["effective_rank"] < 1.5 and "warning" in rank_one
    spread = representation_stats(task, nn.Linear(16, 8), collapse_std=0.01)
    assert spread["effective_rank"] > 6 and "warning" not in spread
    assert 0 <= spread["alignment"] < constant["alignment"] + 1  # a close view is well aligned
    assert representation_stats(object(), nn.Linear(16, 8), 0.01) == {}  # tasks without a pair log nothing


def test_encoder_mode_is_restored() -> None:
    encoder = nn.Sequential(nn.Linear(16, 8), nn.Dropout(0.5))
    encoder.train()
    representation_stats(PairTask(), encoder, 0.01)
    assert encoder.training


def test_collapse_threshold_scales_with_the_dimension() -> None:
    assert collapse_warning(0.02, 4, 0.01) is None
    assert "below 1.00e-03" in collapse_warning(0.0005, 100, 0.01)


def test_runs_log_diagnostics_every_k_epochs_and_at_the_end(tmp_path, shared_datasets) -> None:
    cfg = load_config(REPO / "configs/graphcl/mutag.yaml",
                      [f"data.root={shared_datasets}", "seeds=[0]", "trainer.epochs=5", "trainer.progress=false",
                       "trainer.diagnostics_every=2", "eval.params.kernel=linear"])
    train_run(cfg, tmp_path / "run", log=lambda *_: None)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if "effective_rank" in r] == [2, 4, 5]
    assert all(k in rows[1] for k in ("alignment", "uniformity", "effective_rank", "feature_std"))
