"""Fixtures of the image tests: tiny methods on scikit-learn's 8 x 8 digits, one torch thread."""
import pytest
import torch

from graphcl.vision.backbones import build_backbone
from graphcl.vision.data import load_images
from graphcl.vision.methods import DINO, PIRL, BYOL, BarlowTwins, MoCo, SimCLR, SimSiam, SwAV, VICReg
from graphcl.vision.views import ImageViews

# tiny heads so a step takes milliseconds
CASES = {
    "simclr": (SimCLR, {}),
    "moco": (MoCo, dict(queue_size=64)),
    "pirl": (PIRL, dict(dataset_size=1347, num_negatives=256)),
    "byol": (BYOL, dict(proj_hidden=64, proj_out=32, total_steps=20)),
    "simsiam": (SimSiam, dict(proj_out=64, proj_hidden=64)),
    "vicreg": (VICReg, dict(proj_out=64, proj_hidden=64)),
    "barlowtwins": (BarlowTwins, dict(proj_out=64, proj_hidden=64)),
    "swav": (SwAV, dict(num_prototypes=16, steps_per_epoch=2, queue_size=64)),
    "dino": (DINO, dict(out_dim=64, proj_hidden=64, bottleneck=16, steps_per_epoch=2,
                        warmup_teacher_temp_epochs=2)),
}
MULTI_CROP = {"swav", "dino"}


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def digits():
    return load_images("digits")


@pytest.fixture
def batch(digits):
    """(images [64, 1, 8, 8] in [0, 1], dataset indices [64])."""
    idx = torch.arange(64)
    return digits.train_x[idx].float() / 255, idx


def make(name: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    cls, kwargs = CASES[name]
    encoder = build_backbone("convnet", 1, width=8)
    views = ImageViews(size=8, num_local=2 if name in MULTI_CROP else 0, local_size=4)
    return cls(encoder, encoder.feature_dim, views=views, **{**kwargs, **overrides})


def train_steps(method, batch, steps: int, lr: float = 3e-3, first_step: int = 1) -> list[float]:
    """`steps` real training steps (forward, backward, Adam, after_step) on one batch; the losses."""
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr)
    losses = []
    for step in range(first_step, first_step + steps):
        loss = method(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if hasattr(method, "after_step"):
            method.after_step(step, 100)
        losses.append(loss.item())
    return losses
