"""GNN encoders: PyG's own `BasicGNN` models, configured by name.

A trained encoder is a plain PyG module (`GCN`, `GraphSAGE`, `GAT`, `GIN`, or a PyG `Sequential` of one of
them and its output activation), so it drops into any PyG pipeline without graphcl.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from torch import Tensor, nn
from torch_geometric.nn import GINConv, Sequential
from torch_geometric.nn.models import GAT, GCN, GIN, GraphSAGE
from torch_geometric.nn.models.basic_gnn import BasicGNN
from torch_geometric.nn.resolver import activation_resolver, normalization_resolver

from graphcl.core.lazy import resolve

# PyG models, and "module:Class" for those imported on first use (MolGIN imports ogb, slow to import).
ENCODERS: dict[str, Any] = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT, "gin": GIN,
                            "mol_gin": "graphcl.graph.molecules:MolGIN"}
# Encoders whose first operation on x is a linear layer, so x may be a CSR matrix (SAGE and GIN aggregate
# raw features first, which PyTorch's sparse kernels do not support).
SPARSE_INPUT_ENCODERS = frozenset({"gcn", "gat"})


def build_encoder(
    name: str,
    in_channels: int,
    hidden_channels: int,
    num_layers: int,
    out_channels: Optional[int] = None,
    act: str = "prelu",
    dropout: float = 0.0,
    norm: Optional[str] = None,
    act_last: bool = True,
    norm_last: bool = False,
    shared_act: bool = True,
    options: Optional[dict[str, Any]] = None,
    **kwargs: Any,
) -> nn.Module:
    """A PyG `BasicGNN` `in_channels -> hidden_channels (x num_layers) -> out_channels`.

    PyG applies the norm and activation between layers only; `act_last=True` also activates the output (as DGI,
    GRACE and BGRL do) by wrapping the model in a PyG `Sequential('x, edge_index', [gnn, act])`, and
    `norm_last=True` normalises it first (`[gnn, norm, act]`, `norm` with the model's `norm_kwargs`: BGRL's
    encoder, batch norm then PReLU after every layer). `options` are further keyword arguments of the PyG model
    (e.g. `heads` for GAT).
    `forward(x [N, F], edge_index [2, E] or sparse adjacency) -> [N, out_channels or hidden_channels]`.

    `options={"jk": "cat"}` without `out_channels` is the InfoGraph/GraphCL encoder: every layer normalised
    and activated, their outputs concatenated, `[N, num_layers * hidden_channels]` -- PyG's final linear
    map after the concatenation is removed (the model has no `lin`, so its `forward` skips it).
    `options={"mlp_norm": False}` (GIN only) leaves the norm out of each conv's two-layer MLP, which PyG's GIN
    puts there: the official GraphCL and InfoGraph convs are Linear-ReLU-Linear, normalised after the conv only.
    `shared_act=False` gives every use of the activation its own module (`own_activations`; PyG shares one).
    """
    key = name.lower()
    if key not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    options = dict(options or {})
    mlp_norm = options.pop("mlp_norm", True)
    if not mlp_norm and key != "gin":
        raise ValueError(f"option mlp_norm applies to the gin encoder only, not {key}")
    cls = ENCODERS[key]
    gnn = (resolve(cls) if isinstance(cls, str) else cls)(
        in_channels,
        hidden_channels,
        num_layers,
        out_channels=out_channels,
        act=act,
        dropout=dropout,
        norm=norm,
        **options,
        **kwargs,
    )
    if not mlp_norm:  # what PyG's MLP holds when built with norm=None
        for conv in gnn.convs:
            conv.nn.norms = nn.ModuleList([nn.Identity() for _ in conv.nn.norms])
    if not shared_act:
        own_activations(gnn, act)
    if gnn.jk_mode == "cat":
        gnn.jk.register_forward_pre_hook(_contiguous_layer_grads)
        if out_channels is None:
            del gnn.lin
            gnn.out_channels = num_layers * hidden_channels
    if norm_last and norm is None:
        raise ValueError("norm_last needs a norm (model.encoder.norm)")
    if (act_last or norm_last) and reads_edge_attr(gnn):  # PyG's Sequential cannot pass an optional edge_attr
        raise ValueError(f"the {key} encoder reads edge features, which an output activation or norm cannot pass "
                         "on: set model.encoder.act_last and norm_last to false")
    norm_kwargs = options.get("norm_kwargs", {})
    tail = [normalization_resolver(norm, gnn.out_channels, **norm_kwargs)] if norm_last else []
    # Re-use the model's own activation module where PyG shares one across layers (a 1-layer model would
    # otherwise carry an unused PReLU parameter); with its own activations, the output gets a new one.
    if act_last:
        tail.append(gnn.act if isinstance(gnn.act, nn.Module) else activation_resolver(act))
    return Sequential("x, edge_index", [(gnn, "x, edge_index -> x"), *tail]) if tail else gnn


def own_activations(gnn: BasicGNN, act: str) -> None:
    """Give every use of `gnn`'s activation its own module, in place.

    PyG builds one activation module and applies it after every layer (GIN also inside every conv's MLP), so a
    PReLU learns one slope for the whole network; the official GraphMAE and MVGRL encoders learn one per use.
    Each layer's activation moves behind its norm (`norms[i]` becomes `Sequential(norm, act)`, what PyG computes
    with `act_first=False`) and the model's own `act` is set to None: the model stays a plain PyG `BasicGNN`.
    """
    if gnn.act_first or gnn.supports_norm_batch:
        raise ValueError("shared_act false needs act_first false and a norm without a batch argument "
                         f"(model.encoder.norm is {gnn.norm!r})")
    shared = gnn.act
    for module in list(gnn.modules()):
        for name, child in list(module.named_children()):
            if child is shared and module is not gnn:
                setattr(module, name, activation_resolver(act))
    activated = gnn.num_layers if gnn.jk_mode is not None else gnn.num_layers - 1  # the last norm is unused
    gnn.norms = nn.ModuleList(nn.Sequential(norm, activation_resolver(act)) if i < activated else norm
                              for i, norm in enumerate(gnn.norms))
    gnn.act = None


def _contiguous_layer_grads(jk: nn.Module, args: tuple) -> None:
    """Concatenating the layers hands each one a strided slice of the gradient, on which batch norm's backward
    runs ~2.5x slower on CPU: give each layer's output a contiguous gradient."""
    for x in args[0]:
        if x.requires_grad:
            x.register_hook(Tensor.contiguous)


def reset_parameters(module: nn.Module) -> nn.Module:
    """Re-draw the parameters of every sub-module of `module` that knows how to (global RNG, `modules()` order;
    `module`'s own `reset_parameters`, which would re-draw its children again, is not called); returns `module`."""
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return module


def reads_edge_attr(encoder: nn.Module) -> bool:
    """Whether the encoder's convs embed `edge_attr` (OGB bond features: `MolGIN`), so callers must pass it."""
    return bool(getattr(basic_gnn(encoder), "reads_edge_attr", False))


def output_channels(encoder: nn.Module) -> Optional[int]:
    """The width of an encoder's output: `out_channels` of the module or of its PyG `BasicGNN`."""
    width = getattr(encoder, "out_channels", None)
    gnn = basic_gnn(encoder)
    return width if width is not None else (gnn.out_channels if gnn is not None else None)


def basic_gnn(encoder: nn.Module) -> Optional[BasicGNN]:
    """The PyG `BasicGNN` of an encoder built by `build_encoder` (None for other modules)."""
    return next((m for m in encoder.modules() if isinstance(m, BasicGNN)), None)


class _Given(nn.Module):
    def __init__(self, output: Tensor) -> None:
        super().__init__()
        self.output = output

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.output


@contextmanager
def first_layer_output(encoder: nn.Module, output: Tensor) -> Iterator[None]:
    """Within the block, the encoder's first conv returns `output` instead of computing it.

    Lets a method compute the first layer of several views at once (e.g. DGI: `X W` is shared by the real
    and the shuffled view) and run the rest of the unchanged PyG model on each.
    """
    convs = basic_gnn(encoder).convs
    first = convs[0]
    convs[0] = _Given(output)
    try:
        yield
    finally:
        convs[0] = first


def views_from_first_layer(encoder: nn.Module, first: Tensor, run: Callable[[], Tensor],
                           views: int = 2) -> tuple[Tensor, ...]:
    """The encoder's outputs on `views` inputs whose first-conv outputs lie side by side in `first [N, views*H]`.

    `run()` calls the encoder (its first conv then returns the given output). A 1-layer model without jumping
    knowledge only passes the conv's output through its elementwise output activation: it runs once on all views
    side by side; deeper models run once per view.
    """
    gnn = basic_gnn(encoder)
    if gnn.num_layers == 1 and gnn.jk_mode is None:
        with first_layer_output(encoder, first):
            return tuple(run().chunk(views, dim=1))
    outs = []
    for part in first.chunk(views, dim=1):
        with first_layer_output(encoder, part):
            outs.append(run())
    return tuple(outs)


# MessagePassing's hooks, which a conv computed another way (`forwards_replaced`) would skip
_PROPAGATION_HOOKS = tuple(f"_{step}_forward{kind}_hooks" for step in ("propagate", "message", "aggregate",
                                                                      "message_and_aggregate", "edge_update")
                           for kind in ("_pre", ""))


def has_propagation_hooks(conv: nn.Module) -> bool:
    return any(getattr(conv, hooks, None) for hooks in _PROPAGATION_HOOKS)


@contextmanager
def forwards_replaced(convs: list[nn.Module], make_forward: Callable[[nn.Module], Callable]) -> Iterator[None]:
    """Within the block each conv of `convs` runs `make_forward(conv)` as its forward (an instance attribute,
    removed on exit: the modules stay PyG's own)."""
    for conv in convs:
        conv.forward = make_forward(conv)
    try:
        yield
    finally:
        for conv in convs:
            del conv.forward


def plain_gin_convs(encoder: nn.Module) -> Optional[list[GINConv]]:
    """The convs of a PyG GIN encoder when every one is a plain `GINConv` (sum aggregation, flow source ->
    target, PyG's own forward), so `gin_layers_on` computes what they compute; else None."""
    gnn = basic_gnn(encoder)
    if not isinstance(gnn, GIN):
        return None
    convs = list(gnn.convs)
    ok = convs and all(type(c) is GINConv and c.aggr == "add" and c.flow == "source_to_target" and not c.explain
                       and not has_propagation_hooks(c) for c in convs)
    return convs if ok else None


@contextmanager
def gin_layers_on(convs: list[GINConv], adj: Any) -> Iterator[None]:
    """Within the block each conv of `convs` (see `plain_gin_convs`) computes `nn(adj @ x + (1 + eps) x)`, what
    `GINConv` computes, with the adjacency `adj` (e.g. a `graph.sparse.adjacency_operand`, whose product
    backpropagates through a precomputed transpose) whatever graph it is called with; the rest of the PyG
    model (norms, activations, jumping knowledge) runs unchanged."""

    def forward(conv: GINConv):
        def run(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            return conv.nn(adj @ x + (1 + conv.eps) * x)

        return run

    with forwards_replaced(convs, forward):
        yield
