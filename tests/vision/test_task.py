"""ImageTask: the run protocol of `graphcl.train.run` on digits, from config to results and a reloadable encoder."""
import json

import pytest
import torch

from graphcl.config import ConfigError, load_config
from graphcl.train import artifacts, build
from graphcl.vision.backbones import build_backbone

VISION = {"simclr": "SimCLR", "moco": "MoCo", "pirl": "PIRL", "byol": "BYOL", "simsiam": "SimSiam",
          "vicreg": "VICReg", "barlowtwins": "BarlowTwins", "swav": "SwAV", "dino": "DINO"}
SMALL = ["data.name=digits", "data.batch_size=128", "model.encoder.name=convnet", "model.encoder.hidden_channels=8",
         "trainer.epochs=2", "trainer.progress=false", "eval.c_grid=[0.1,1.0]", "eval.params.knn_k=20", "seeds=[0]"]


def test_image_methods_and_builder_are_registered():
    for name, cls in VISION.items():
        assert build.method_class(name).__name__ == cls
    assert artifacts.builder("vision") is build_backbone


def task_for(*overrides):
    from graphcl.train.tasks.image import ImageTask

    return ImageTask(load_config(None, [*SMALL, *overrides]), torch.device("cpu"))


def test_task_protocol_pieces():
    task = task_for("model.method=swav", "model.params.num_prototypes=10", "augment.params.num_local=2",
                    "model.heads.projector_out=16")
    assert task.name == "digits" and task.steps_per_epoch == 1347 // 128
    torch.manual_seed(0)
    method = task.build_method()
    assert method.task == "image" and method.views.num_local == 2 and method.prototypes.in_features == 16
    assert method.freeze_steps == task.steps_per_epoch  # the task passed its epoch length
    epoch = task.batches()
    batches = list(epoch)
    assert len(batches) == len(epoch) == 10
    x, idx = batches[0]
    assert x.shape == (128, 1, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert len(torch.cat([b[1] for b in batches]).unique()) == 1280  # no image twice in an epoch
    torch.manual_seed(0)
    again = [b[1] for b in task.batches()]
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(again, [b[1] for b in task.batches()]))  # seeded order
    builder, spec = task.encoder_spec()
    encoder = artifacts.builder(builder)(**spec)
    encoder.load_state_dict(method.encoder.state_dict())
    result = task.evaluate(encoder, seed=0)
    assert result["protocol"] == "linear" and result["metric"] == "accuracy"
    assert all(0 <= result[k] <= 1 for k in ("test", "val", "knn"))
    assert task.embed(encoder).shape == (450, 32)


def test_bad_keys_name_themselves():
    with pytest.raises(ValueError, match="augment.params.crop"):
        task_for("model.method=simclr", "augment.params.crop=0.5")
    with pytest.raises(ValueError, match="eval.params.k"):
        task_for("model.method=simclr", "eval.params.k=5")
    with pytest.raises(ValueError, match="data.batch_size"):
        task_for("model.method=simclr", "data.batch_size=5000")
    with pytest.raises(ValueError, match="model.encoder.name"):
        task_for("model.method=simclr", "model.encoder.name=gcn")
    with pytest.raises(ConfigError, match="model.params.temp"):
        task_for("model.method=simclr", "model.params.temp=0.1").build_method()


@pytest.mark.parametrize("method", ["moco", "byol"])
def test_train_run_end_to_end(method, tmp_path):
    from graphcl.train.artifacts import load_encoder
    from graphcl.train.run import evaluate_run, train_run

    cfg = load_config(None, [*SMALL, f"model.method={method}", "model.params.momentum_start=0.99"
                             if method == "byol" else "model.params.queue_size=256"])
    results = train_run(cfg, tmp_path / "run", log=lambda *_: None)
    assert results["dataset"] == "digits" and results["protocol"] == "linear"
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert 0 < saved["test"]["mean"] <= 100
    encoder = load_encoder(tmp_path / "run")
    assert encoder(torch.rand(2, 1, 8, 8)).shape == (2, 32)
    again = evaluate_run(tmp_path / "run")
    assert again["test"]["mean"] == pytest.approx(saved["test"]["mean"])
