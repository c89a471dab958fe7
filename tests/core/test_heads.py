import pytest
import torch
from torch import nn

from graphcl.core.heads import MLP, prediction_head, projection_head


def layer_types(module: nn.Module) -> list[type]:
    return [type(m) for m in module]


def test_mlp_default_is_linear_bn_relu_linear():
    mlp = MLP(8, 16, 4)
    assert layer_types(mlp) == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert mlp(torch.randn(5, 8)).shape == (5, 4)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("norm", ["batch", "layer", None])
def test_mlp_shapes(num_layers, norm):
    mlp = MLP(6, 10, 3, num_layers=num_layers, norm=norm, dropout=0.1)
    assert mlp(torch.randn(7, 6)).shape == (7, 3)
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert len(linears) == num_layers
    assert linears[0].in_features == 6 and linears[-1].out_features == 3
    assert isinstance(mlp[-1], nn.Linear)  # plain last layer by default


def test_mlp_last_norm_activation_and_leading_dims():
    mlp = MLP(4, 8, 4, norm="batch", act="prelu", last_norm=True)
    assert layer_types(mlp) == [nn.Linear, nn.BatchNorm1d, nn.PReLU, nn.Linear, nn.BatchNorm1d]
    assert mlp(torch.randn(2, 3, 4)).shape == (2, 3, 4)  # [B, T, D]: BatchNorm over B*T rows
    assert isinstance(MLP(4, 8, 4, act=nn.Tanh)[2], nn.Tanh)


def test_mlp_validation():
    for kwargs in ({"in_dim": 0}, {"hidden_dim": -1}, {"out_dim": 0}, {"num_layers": 0}):
        args = {"in_dim": 4, "hidden_dim": 8, "out_dim": 2, **kwargs}
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            MLP(**args)
    with pytest.raises(ValueError, match="norm"):
        MLP(4, 8, 2, norm="group")
    with pytest.raises(ValueError, match="act"):
        MLP(4, 8, 2, act="swishy")
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, 8, 2, dropout=1.0)


def test_factories_defaults():
    proj = projection_head(32)
    assert layer_types(proj) == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert proj[0].out_features == 32 and proj(torch.randn(4, 32)).shape == (4, 128)
    byol = projection_head(16, 8, 64)
    assert byol[0].out_features == 64 and byol(torch.randn(4, 16)).shape == (4, 8)
    grace = projection_head(16, 16, 16, norm=None, act="elu")
    assert layer_types(grace) == [nn.Linear, nn.ELU, nn.Linear]
    pred = prediction_head(8, 32)
    assert pred[0].out_features == 32 and pred(torch.randn(4, 8)).shape == (4, 8)
    assert prediction_head(8)[0].out_features == 8
    with pytest.raises(ValueError, match="hidden_dim"):
        prediction_head(8, 0)
