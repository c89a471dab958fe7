"""The sequence readers on small files the tests write: `.ts`, FSDD WAVs in a tar.gz, ETT CSV."""
from __future__ import annotations

import io
import tarfile
import wave

import numpy as np
import pytest
import torch

from graphcl.data.sequences import (encode_labels, load_ett, load_fsdd, load_ucr_uea, pad_sequences, read_ts,
                                    standardize)

TS = """# a comment block
# more comments
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true walk run 10.0
@data
1,2,3:4,5,6:walk
0.5,?:1.5,2.5:run
7,8,9,10:-1,-2,-3,-4:10.0

2.0,1:3,4:2.0
"""


def _write_ts(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_read_ts_multivariate_variable_length_string_labels(tmp_path):
    path = _write_ts(tmp_path, "Tiny_TRAIN.ts", TS)
    series, labels = read_ts(path)
    assert labels == ["walk", "run", "10.0", "2.0"]
    assert [s.shape for s in series] == [(2, 3), (2, 2), (2, 4), (2, 2)]
    np.testing.assert_array_equal(series[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(series[2], [[7, 8, 9, 10], [-1, -2, -3, -4]])
    assert series[1][0, 0] == 0.5 and np.isnan(series[1][0, 1])
    assert series[0].dtype == np.float32
    x, mask = pad_sequences(series)
    assert x.shape == (4, 2, 4) and mask.tolist()[1] == [True, True, False, False]
    assert x[1, 0, 1] == 0 and x[0, 1, 3] == 0  # missing value and padding are zeros


def test_encode_labels_sorts_numbers_numerically_and_rejects_unseen():
    classes, (tr, te) = encode_labels(["10.0", "2.0", "1.0", "2.0"], ["1.0", "10.0"])
    assert classes == ["1.0", "2.0", "10.0"]
    assert tr.tolist() == [2, 1, 0, 1] and te.tolist() == [0, 2]
    assert encode_labels(["b", "a"])[0] == ["a", "b"]
    with pytest.raises(ValueError, match="do not occur in the train split"):
        encode_labels(["a"], ["c"])


@pytest.mark.parametrize("bad, msg", [
    ("@problemName X\n@classLabel true a\n@data\n1,2:3:a\n", r"Bad_TRAIN.ts:4: channels have different lengths"),
    ("@problemName X\n@dimensions 2\n@classLabel true a\n@data\n1,2:a\n", r"Bad_TRAIN.ts:5: expected 2 channels"),
    ("@problemName X\n@timeStamps true\n@data\n", r"Bad_TRAIN.ts:2: @timeStamps true"),
    ("@problemName X\n@classLabel true a\n@data\n1,x:a\n", r"Bad_TRAIN.ts:4: bad value"),
    ("@problemName X\n", "no '@data'"),
])
def test_read_ts_errors_name_file_and_line(tmp_path, bad, msg):
    path = _write_ts(tmp_path, "Bad_TRAIN.ts", bad)
    with pytest.raises(ValueError, match=msg):
        read_ts(path)


def test_load_ucr_uea_split_and_missing_files(tmp_path):
    folder = tmp_path / "sequences" / "UEA" / "Tiny"
    _write_ts(folder, "Tiny_TRAIN.ts", TS)
    _write_ts(folder, "Tiny_TEST.ts", TS.replace("1,2,3:4,5,6:walk", "1,2,3,4,5:4,5,6,7,8:run"))
    train, test = load_ucr_uea("tiny", tmp_path)  # case-insensitive name, root above sequences/
    assert train.x.shape == (4, 2, 5) and test.x.shape == (4, 2, 5)
    assert train.classes == ["2.0", "10.0", "run", "walk"]
    assert train.y.tolist() == [3, 2, 1, 0] and test.y.tolist() == [2, 2, 1, 0]
    assert test.lengths.tolist() == [5, 2, 4, 2]
    with pytest.raises(FileNotFoundError, match="Nope_TRAIN.ts"):
        load_ucr_uea("Nope", tmp_path)


def _wav(samples: np.ndarray, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def test_load_fsdd_split_by_recording_index(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHCL_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "sequences" / "FSDD"
    folder.mkdir(parents=True)
    clips = {f"recordings/{d}_{s}_{i}.wav": np.full(10 + i, (d + 1) * 100 * (1 if s == "amy" else -1))
             for d in (3, 7) for s in ("amy", "bob") for i in (0, 4, 5, 49)}
    with tarfile.open(folder / "fsdd_recordings_test.tar.gz", "w:gz") as tar:
        for name, samples in clips.items():
            data = _wav(samples)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    for _ in range(2):  # second call reads the cache
        train, test = load_fsdd(tmp_path)
        assert len(train) == 8 and len(test) == 8
        assert sorted(train.lengths.tolist()) == [15] * 4 + [59] * 4
        assert sorted(test.lengths.tolist()) == [10] * 4 + [14] * 4
        assert sorted(train.y.tolist()) == [3] * 4 + [7] * 4
        spk = train.extra["speaker"]
        first = train.x[:, 0, 0]
        assert torch.equal(spk == 0, first > 0)  # amy (index 0) has positive samples
        torch.testing.assert_close(first.abs(), (train.y + 1).float() * 100 / 32768)
    with pytest.raises(FileNotFoundError, match="FSDD"):
        load_fsdd(tmp_path / "empty")


def test_load_ett_and_standardize_uses_train_only(tmp_path):
    folder = tmp_path / "sequences" / "ETT"
    folder.mkdir(parents=True)
    (folder / "ETTh1.csv").write_text("date,A,OT\n2016-07-01 00:00:00,1,2\n2016-07-01 01:00:00,3,4.5\n")
    values, cols = load_ett("etth1", tmp_path)
    assert cols == ["A", "OT"] and values.tolist() == [[1, 2], [3, 4.5]]
    (folder / "ETTh2.csv").write_text("date,A,OT\nx,1,oops\n")
    with pytest.raises(ValueError, match="ETTh2.csv"):
        load_ett("ETTh2", tmp_path)

    from graphcl.data.sequences import SequenceSet
    mask = torch.tensor([[True, True, False], [True, True, True]])
    train = SequenceSet(torch.tensor([[[1.0, 3.0, 99.0]], [[5.0, 7.0, 9.0]]]), mask, torch.tensor([0, 1]))
    test = SequenceSet(torch.tensor([[[100.0, 0.0, 0.0]]]), torch.tensor([[True, False, False]]), torch.tensor([0]))
    mean, std = standardize(train, test)
    real = torch.tensor([1.0, 3.0, 5.0, 7.0, 9.0])
    torch.testing.assert_close(mean, real.mean()[None])
    torch.testing.assert_close(std, real.std(unbiased=False)[None])
    assert train.x[0, 0, 2] == 0 and test.x[0, 0, 1] == 0  # padding stays zero
    torch.testing.assert_close(test.x[0, 0, 0], (100 - real.mean()) / real.std(unbiased=False))
