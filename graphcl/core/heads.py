"""Projection and prediction heads: small MLPs on top of an encoder (SimCLR, GRACE, BYOL, BGRL, SimSiam)."""
from collections.abc import Callable

from torch import Tensor, nn

__all__ = ["MLP", "ShortcutMLP", "projection_head", "prediction_head"]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "prelu": nn.PReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
}
_NORMS: dict[str, Callable[[int], nn.Module]] = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


class MLP(nn.Sequential):
    """`num_layers` Linear layers with norm -> activation -> dropout between them.

    `[*, in_dim] -> [*, out_dim]`; leading dimensions are flattened around the layers so BatchNorm
    normalises over all of them. `num_layers=1` is a single Linear (`hidden_dim` unused).

    Args:
        norm: "batch", "layer" or None.
        act: a name in `_ACTIVATIONS` or a zero-argument factory returning a module.
        last_norm: also normalise the output (SimSiam's projector).
        dropout: dropout probability after each hidden activation.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        norm: str | None = "batch",
        act: str | Callable[[], nn.Module] = "relu",
        last_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        sizes = {"in_dim": in_dim, "hidden_dim": hidden_dim, "out_dim": out_dim, "num_layers": num_layers}
        for name, value in sizes.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if norm is not None and norm not in _NORMS:
            raise ValueError(f"norm must be one of {sorted(_NORMS)} or None, got {norm!r}")
        if isinstance(act, str) and act not in _ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(_ACTIVATIONS)} or a module factory, got {act!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        make_act = _ACTIVATIONS[act] if isinstance(act, str) else act
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out))
            hidden = i < num_layers - 1
            if norm is not None and (hidden or last_norm):
                layers.append(_NORMS[norm](d_out))
            if hidden:
                layers.append(make_act())
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(*lead, -1)


def projection_head(in_dim: int, out_dim: int = 128, hidden_dim: int | None = None, **kwargs) -> MLP:
    """Linear-BN-ReLU-Linear projector `[*, in_dim] -> [*, out_dim]`; `hidden_dim` defaults to `in_dim` (SimCLR).

    BYOL: `projection_head(2048, 256, 4096)`; GRACE: `projection_head(d, d, d, norm=None, act="elu")`.
    Other keyword arguments go to `MLP`.
    """
    return MLP(in_dim, in_dim if hidden_dim is None else hidden_dim, out_dim, **kwargs)


def prediction_head(dim: int, hidden_dim: int | None = None, **kwargs) -> MLP:
    """Linear-BN-ReLU-Linear predictor `[*, dim] -> [*, dim]`; `hidden_dim` defaults to `dim`.

    BYOL: `prediction_head(256, 4096)`; SimSiam: `prediction_head(2048, 512)`; BGRL: `act="prelu"`.
    """
    return MLP(dim, dim if hidden_dim is None else hidden_dim, dim, **kwargs)


class ShortcutMLP(nn.Module):
    """`act(MLP(x)) + Linear(x)`, `[*, in_dim] -> [*, out_dim]`: a `num_layers` MLP (no norm) whose every layer
    is activated, beside a linear shortcut -- the feed-forward heads of InfoGraph's and MVGRL's discriminators."""

    def __init__(self, in_dim: int, out_dim: int, num_layers: int = 3, act: str = "relu") -> None:
        super().__init__()
        self.block = nn.Sequential(MLP(in_dim, out_dim, out_dim, num_layers, norm=None, act=act), _ACTIVATIONS[act]())
        self.shortcut = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + self.shortcut(x)
