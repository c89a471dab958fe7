"""A new method from graphcl's core parts in under 50 lines: VICReg on the nodes of a graph.

    python examples/new_method.py                          # Cora, 100 epochs
    GRAPHCL_EXAMPLE_FAST=1 python examples/new_method.py   # 5 epochs, a narrow encoder

views: `edge_feature_view` (edges dropped, feature columns masked); encoder: a PyG GCN from `build_encoder`;
head: `projection_head`; objective: `vicreg` (invariance + variance + covariance, no negatives). The shared
`Trainer` runs it: a method is any module whose `forward(batch)` returns the loss.
"""
import argparse
import os

import torch
from torch import nn

from graphcl.core.heads import projection_head
from graphcl.core.losses import vicreg
from graphcl.data import load_dataset
from graphcl.evaluate import evaluate_nodes
from graphcl.graph import build_encoder
from graphcl.graph.views import edge_feature_view
from graphcl.train.trainer import Trainer

FAST = os.environ.get("GRAPHCL_EXAMPLE_FAST") == "1"


# --8<-- [start:method]
class GraphVICReg(nn.Module):
    def __init__(self, encoder: nn.Module, dim: int, drop_edge: float = 0.3, drop_feature: float = 0.2) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projection_head(dim, 2 * dim, 2 * dim)  # Linear-BN-ReLU-Linear
        self.rates = (drop_edge, drop_feature)

    def forward(self, batch) -> torch.Tensor:
        z1, z2 = (self.projector(self.encoder(*edge_feature_view(batch, *self.rates))) for _ in range(2))
        return vicreg(z1, z2)

    @torch.no_grad()
    def embed(self, batch) -> torch.Tensor:
        return self.encoder(batch.x, batch.edge_index)
# --8<-- [end:method]


def main() -> None:
    p = argparse.ArgumentParser(description="VICReg on Cora's nodes, assembled from core parts.")
    p.add_argument("--epochs", type=int, default=5 if FAST else 100)
    p.add_argument("--hidden", type=int, default=64 if FAST else 512)
    args = p.parse_args()
    torch.manual_seed(0)
    data = load_dataset("Cora", normalize_features=True)[0]

    encoder = build_encoder("gcn", data.num_features, args.hidden, num_layers=2, act="prelu")
    method = GraphVICReg(encoder, args.hidden)
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3, weight_decay=1e-5)
    fit = Trainer(method, optimizer, lambda: [data], epochs=args.epochs, progress=False,
                  on_epoch=lambda row: print(f"epoch {row['epoch']}: loss {row['loss']:.4f}")).fit()

    method.eval()
    result = evaluate_nodes(method.embed(data), data, protocol="public")  # linear probe, C chosen on val
    print(f"GraphVICReg, {fit.epochs} epochs ({fit.seconds_per_epoch:.3f} s/epoch): "
          f"test accuracy {100 * result['test']:.2f} % (val {100 * result['val']:.2f} %)")


if __name__ == "__main__":
    main()
