"""`encoder.pt` across versions: the format field decides, an unknown format or builder is a one-line error."""
from __future__ import annotations

import pytest
import torch

import graphcl
from graphcl.graph.encoders import build_encoder
from graphcl.train.artifacts import save_encoder
from graphcl.train.checkpoint import CheckpointError, load_torch, save_torch

SPEC = {"name": "gin", "in_channels": 5, "hidden_channels": 8, "num_layers": 2, "act_last": False,
        "options": {"jk": "cat"}}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    encoder = build_encoder(**SPEC)
    path = tmp_path / "encoder.pt"
    save_encoder(path, SPEC, [encoder.state_dict()], [3], meta={"method": "graphcl", "dataset": "toy"})
    return path, encoder


def rewrite(path, **changes) -> None:
    obj = load_torch(path, "encoder")
    save_torch({**obj, **changes}, path)


def test_round_trip_gives_the_same_module_on_the_requested_device(saved) -> None:
    path, encoder = saved
    loaded = graphcl.load_encoder(path, map_location="cpu")
    assert type(loaded) is type(encoder) and not loaded.training
    x, edge_index = torch.randn(4, 5), torch.tensor([[0, 1, 2], [1, 2, 3]])
    torch.testing.assert_close(loaded(x, edge_index), encoder.eval()(x, edge_index))
    with pytest.raises(ValueError, match=r"seed 0 is not in this run's seeds \[3\]"):
        graphcl.load_encoder(path, seed=0)


def test_files_of_other_graphcl_versions_load_when_their_format_is_known(saved) -> None:
    path, _ = saved
    rewrite(path, graphcl_version="0.0.1")
    assert graphcl.load_encoder(path) is not None


def test_unknown_format_or_builder_is_a_clear_error(saved) -> None:
    path, _ = saved
    rewrite(path, format=99)
    with pytest.raises(CheckpointError, match=r"encoder format 99; this graphcl \(.*\) reads format 1"):
        graphcl.load_encoder(path)
    rewrite(path, format=1, builder="hypergraph")
    with pytest.raises(CheckpointError, match="unknown encoder builder 'hypergraph'"):
        graphcl.load_encoder(path)
