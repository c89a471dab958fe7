"""Fine-tune a pretrained DGI encoder inside an ordinary PyG training loop on Cora.

    python examples/finetune_dgi_cora.py                          # DGI (early stopping), 200 fine-tuning epochs
    GRAPHCL_EXAMPLE_FAST=1 python examples/finetune_dgi_cora.py   # a few epochs of each, seconds

`graphcl.load_encoder` returns the plain PyG module it trained (a `torch_geometric.nn.Sequential` of a `GCN`
and its PReLU), so everything after the pretraining is standard PyTorch: a `torch.nn.Linear` head on top,
cross-entropy on the training nodes, Adam on both.
"""
import argparse
import os
import tempfile

import torch
import torch.nn.functional as F

import graphcl
from graphcl.data import load_dataset

FAST = os.environ.get("GRAPHCL_EXAMPLE_FAST") == "1"


def main() -> None:
    p = argparse.ArgumentParser(description="Fine-tune a pretrained DGI encoder on Cora.")
    p.add_argument("--pretrain-epochs", type=int, default=3 if FAST else 1000, help="upper bound (patience 20)")
    p.add_argument("--finetune-epochs", type=int, default=50 if FAST else 200)
    p.add_argument("--hidden", type=int, default=64 if FAST else 512)
    args = p.parse_args()
    torch.manual_seed(0)

    data = load_dataset("Cora", normalize_features=True)[0]  # from $GRAPHCL_DATA; never downloads

    with tempfile.TemporaryDirectory() as tmp:
        # 1. Self-supervised pretraining on the graph alone (no labels), with the CLI's trainer.
        # --8<-- [start:pretrain]
        run = graphcl.pretrain(data, method="dgi", out=f"{tmp}/dgi-cora",
                               trainer={"epochs": args.pretrain_epochs, "patience": 20, "progress": False},
                               model={"encoder": {"hidden_channels": args.hidden}})
        print(f"pretrained DGI: frozen linear probe {run.results['test']['mean']:.2f} % test accuracy")
        # 2. The trained encoder as a plain PyG module, in eval mode, weights included.
        encoder = graphcl.load_encoder(run.run_dir)
        # --8<-- [end:pretrain]
    print(f"encoder: {type(encoder).__module__}.{type(encoder).__name__}")

    # 3. An ordinary supervised PyG loop: Linear head, cross-entropy on train_mask, encoder fine-tuned slowly.
    # --8<-- [start:finetune]
    head = torch.nn.Linear(args.hidden, int(data.y.max()) + 1)
    optimizer = torch.optim.Adam([{"params": encoder.parameters(), "lr": 1e-3},
                                  {"params": head.parameters(), "lr": 1e-2, "weight_decay": 5e-4}])
    for epoch in range(1, args.finetune_epochs + 1):
        encoder.train(), head.train()
        optimizer.zero_grad()
        out = head(encoder(data.x, data.edge_index))
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        optimizer.step()
    # --8<-- [end:finetune]

    encoder.eval(), head.eval()
    with torch.no_grad():
        pred = head(encoder(data.x, data.edge_index)).argmax(dim=1)
    acc = {k: (pred[m] == data.y[m]).float().mean().item() for k, m in [("val", data.val_mask), ("test", data.test_mask)]}
    print(f"fine-tuned {args.finetune_epochs} epochs: train loss {loss.item():.4f}, "
          f"val accuracy {100 * acc['val']:.2f} %, test accuracy {100 * acc['test']:.2f} %")


if __name__ == "__main__":
    main()
