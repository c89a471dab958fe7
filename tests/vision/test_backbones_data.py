"""Backbones (shapes, any input side, rebuild from spec) and the image loaders (IDX, JPEG archive, digits)."""
import gzip
import io
import tarfile

import numpy as np
import pytest
import torch

from graphcl.vision.backbones import ConvNet, ResNet18, build_backbone
from graphcl.vision.data import image_dataset_name, load_images, read_idx


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread):
    yield


def test_convnet_shapes_any_side():
    net = ConvNet(1, width=8)
    assert net.feature_dim == 32
    for side in (28, 12, 7, 1):
        assert net(torch.rand(3, 1, side, side)).shape == (3, 32)


def test_resnet18_cifar_stem():
    net = ResNet18(3, width=8)
    assert net.feature_dim == 64
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 64)
    first = net.stem[0]
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    standard = ResNet18(3)  # 11.2 M parameters: the CIFAR ResNet-18
    assert standard.feature_dim == 512
    assert 11.0e6 < sum(p.numel() for p in standard.parameters()) < 11.3e6


def test_build_backbone_rebuilds_state_and_normalises():
    spec = {"name": "convnet", "in_channels": 1, "width": 4, "mean": [0.3], "std": [0.2]}
    a = build_backbone(**spec)
    b = build_backbone(**spec)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(a.eval()(x), b.eval()(x))
    assert torch.equal(a.normalize.mean.view(-1), torch.tensor([0.3]))
    with pytest.raises(ValueError, match="unknown image backbone 'vgg'"):
        build_backbone("vgg", 3)
    with pytest.raises(ValueError, match=r"expected images \[B, 1, H, W\]"):
        a(torch.rand(2, 3, 8, 8))


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_and_truncation(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(a)))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), a)
    (tmp_path / "b").write_bytes(_idx_bytes(a)[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "b")


def test_idx_dataset_from_synthetic_files(tmp_path):
    raw = tmp_path / "images" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        images = _idx_bytes(rng.integers(0, 256, (n, 28, 28)))
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_bytes(np.arange(n) % 10))
    d = load_images("Fashion-MNIST", tmp_path)
    assert d.train_x.shape == (5, 1, 28, 28) and d.train_x.dtype == torch.uint8
    assert d.test_y.tolist() == [0, 1, 2] and d.name == "FashionMNIST"


def test_missing_files_name_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_images("mnist", tmp_path)


def test_cifar_archive_reader(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    archive = tmp_path / "images" / "CIFAR10-jpg" / "cifar10_jpg_q75.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for split, cls, n in (("train", "cat", 2), ("train", "airplane", 1), ("test", "truck", 1)):
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(np.full((32, 32, 3), 40 * i + 10, np.uint8)).save(buf, "JPEG", quality=95)
                info = tarfile.TarInfo(f"cifar10_jpg/{split}/{cls}/{i:04d}.jpg")
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)
    d = load_images("CIFAR-10", tmp_path)
    assert d.train_x.shape == (3, 3, 32, 32) and d.train_y.tolist() == [0, 3, 3] and d.test_y.tolist() == [9]
    again = load_images("cifar10", tmp_path)  # from the cache now
    assert torch.equal(again.train_x, d.train_x)


def test_digits_and_names():
    d = load_images("digits")
    assert d.train_x.shape == (1347, 1, 8, 8) and d.test_x.shape == (450, 1, 8, 8)
    assert d.train_x.max() == 255 and d.num_classes == 10
    assert image_dataset_name("FashionMNIST") == "fashion_mnist"
    with pytest.raises(ValueError, match="unknown image dataset 'svhn'"):
        image_dataset_name("svhn")


def test_shared_fashion_mnist(shared_datasets):
    d = load_images("fashion_mnist", shared_datasets)
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert d.train_y[0] == 9 and d.train_y.bincount().tolist() == [6000] * 10
