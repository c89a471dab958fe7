"""Config loading: defaults, overrides, one-line errors, YAML round trip and atomic saving."""
import os
from pathlib import Path

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from graphcl.config import ConfigError, RunConfig, config_from_dict, load_config, save_config, to_yaml

MINIMAL = "data:\n  name: Cora\nmodel:\n  method: dgi\n"
DATA_ONLY = "data:\n  name: Cora\n"  # for texts that add their own model section


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str = MINIMAL, *overrides: str) -> DictConfig:
    return load_config(write(tmp_path, text), overrides)


def error(tmp_path: Path, text: str = MINIMAL, *overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, *overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- valid configs ---------------------------------------------------------------------------------

def test_yaml_loads_with_defaults_filled(tmp_path):
    cfg = load(tmp_path, MINIMAL + "optim:\n  lr: 1e-2\n  weight_decay: 5e-4\n")
    assert cfg.data.name == "Cora" and cfg.model.method == "dgi"
    assert cfg.optim.lr == 0.01 and cfg.optim.weight_decay == 0.0005  # YAML 1e-2 is a float here
    assert cfg.trainer.epochs == 100 and cfg.model.encoder.name == "gcn" and cfg.seeds == [0]
    assert cfg.eval.c_grid == [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
    assert OmegaConf.missing_keys(cfg) == set()


def test_result_is_struct_mode(tmp_path):
    cfg = load(tmp_path)
    assert OmegaConf.is_struct(cfg)
    with pytest.raises(Exception):
        cfg.trainer.epocs = 3


def test_overrides_nested_list_null_and_params(tmp_path):
    cfg = load(tmp_path, "data:\n  name: Cora\n  root: /data\nmodel:\n  method: dgi\n", "trainer.epochs=50", "seeds=[0,1]",
               "data.root=null", "model.params.temperature=0.5", "model.encoder.hidden_channels=64")
    assert cfg.trainer.epochs == 50 and cfg.seeds == [0, 1] and cfg.data.root is None
    assert cfg.model.params == {"temperature": 0.5} and cfg.model.encoder.hidden_channels == 64


def test_later_override_wins_and_params_merge(tmp_path):
    cfg = load(tmp_path, DATA_ONLY + "model:\n  method: dgi\n  params: {tau: 0.2, k: 3}\n",
               "trainer.epochs=5", "trainer.epochs=7", "model.params.tau=0.9")
    assert cfg.trainer.epochs == 7
    assert cfg.model.params == {"tau": 0.9, "k": 3}


def test_defaults_only_with_overrides():
    cfg = load_config(None, ["data.name=Cora", "model.method=grace"])
    assert cfg.data.name == "Cora" and cfg.model.method == "grace"


def test_int_for_float_field_is_converted(tmp_path):
    cfg = load(tmp_path, MINIMAL, "optim.lr=1", "eval.c_grid=[1,10]")
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.eval.c_grid == [1.0, 10.0]


def test_interpolations_are_resolved(tmp_path):
    cfg = load(tmp_path, MINIMAL + "trainer:\n  epochs: 20\n  checkpoint_every: ${trainer.epochs}\n")
    assert cfg.trainer.checkpoint_every == 20
    assert "${" not in to_yaml(cfg)


# --- file errors -----------------------------------------------------------------------------------

def test_missing_file():
    with pytest.raises(ConfigError, match=r"^config file not found: configs/x\.yaml$"):
        load_config("configs/x.yaml")


def test_directory_is_unreadable(tmp_path):
    with pytest.raises(ConfigError, match=rf"^cannot read config file '{tmp_path}': "):
        load_config(tmp_path)


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "data:\n  name: Cora\nseeds: [0, 1\nmodel: {}\n")
    with pytest.raises(ConfigError, match=rf"^malformed YAML in '{path}' \(line 4\): "):
        load_config(path)


def test_duplicate_key_is_malformed(tmp_path):
    assert "duplicate key" in error(tmp_path, MINIMAL + "data:\n  name: PubMed\n")


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "42\n", "hello\n"])
def test_top_level_must_be_a_mapping(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^config file '{path}' must hold a mapping"):
        load_config(path)


# --- key and type errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, overrides, message", [
    ("data:\n  nmae: x\nmodel:\n  method: dgi\n", (), "unknown key 'data.nmae' (did you mean 'data.name'?)"),
    (DATA_ONLY + "model:\n  method: dgi\n  encoder:\n    hiden_channels: 8\n", (),
     "unknown key 'model.encoder.hiden_channels' (did you mean 'model.encoder.hidden_channels'?)"),
    (MINIMAL, ("trainer.epocs=3",), "unknown key 'trainer.epocs' (did you mean 'trainer.epochs'?)"),
    (MINIMAL, ("tranier.epochs=3",), "unknown key 'tranier' (did you mean 'trainer'?)"),
    (MINIMAL, ("zzz=1",), "unknown key 'zzz'"),
])
def test_unknown_key(tmp_path, text, overrides, message):
    assert error(tmp_path, text, *overrides) == message


@pytest.mark.parametrize("override, message", [
    ("trainer.epochs=ten", "key 'trainer.epochs' expects int, got 'ten'"),
    ("trainer.epochs=2.5", "key 'trainer.epochs' expects int, got 2.5"),
    ("trainer.epochs=null", "key 'trainer.epochs' expects int, got None"),
    ("trainer.epochs=[1]", "key 'trainer.epochs' expects int, got [1]"),
    ("trainer.amp=maybe", "key 'trainer.amp' expects bool, got 'maybe'"),
    ("optim.lr=fast", "key 'optim.lr' expects float, got 'fast'"),
    ("trainer.patience=x", "key 'trainer.patience' expects int or null, got 'x'"),
    ("seeds=5", "key 'seeds' expects list of int, got 5"),
    ("seeds=[0,a]", "key 'seeds[1]' expects int, got 'a'"),
    ("trainer=5", "key 'trainer' expects mapping, got 5"),
    ("model.params=3", "key 'model.params' expects mapping, got 3"),
])
def test_wrong_type(tmp_path, override, message):
    assert error(tmp_path, MINIMAL, override) == message


@pytest.mark.parametrize("override", ["trainer.epochs", "=3", "trainer..epochs=3", "seeds[0]=1"])
def test_malformed_override(tmp_path, override):
    assert error(tmp_path, MINIMAL, override) == f"malformed override '{override}' (expected key=value)"


def test_malformed_override_value(tmp_path):
    assert error(tmp_path, MINIMAL, "seeds=[0,1").startswith("malformed value in override 'seeds=[0,1': ")


def test_missing_required_key(tmp_path):
    assert error(tmp_path, "model:\n  method: dgi\n") == "missing required key 'data.name'"
    assert error(tmp_path, "{}\n") == "missing required keys 'data.name', 'model.method'"


def test_unresolvable_interpolation(tmp_path):
    message = error(tmp_path, MINIMAL + "trainer:\n  epochs: ${trainer.nope}\n")
    assert message.startswith("cannot resolve key 'trainer.epochs': ")


# --- value errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("trainer.epochs=-3", "key 'trainer.epochs' must be >= 1, got -3"),
    ("trainer.patience=0", "key 'trainer.patience' must be >= 1 or null, got 0"),
    ("trainer.checkpoint_every=0", "key 'trainer.checkpoint_every' must be >= 1, got 0"),
    ("optim.lr=0", "key 'optim.lr' must be > 0, got 0.0"),
    ("optim.weight_decay=-1e-4", "key 'optim.weight_decay' must be >= 0, got -0.0001"),
    ("model.encoder.hidden_channels=0", "key 'model.encoder.hidden_channels' must be >= 1, got 0"),
    ("model.encoder.num_layers=0", "key 'model.encoder.num_layers' must be >= 1, got 0"),
    ("model.encoder.dropout=1.0", "key 'model.encoder.dropout' must be in [0, 1), got 1.0"),
    ("eval.repeats=0", "key 'eval.repeats' must be >= 1, got 0"),
    ("eval.jobs=0", "key 'eval.jobs' must be >= 1 or -1 (one per core), got 0"),
    ("eval.train_ratio=0", "key 'eval.train_ratio' must be in (0, 1), got 0.0"),
    ("eval.val_ratio=1.5", "key 'eval.val_ratio' must be in (0, 1), got 1.5"),
    ("eval.c_grid=[]", "key 'eval.c_grid' must be a non-empty list of values > 0, got []"),
    ("eval.c_grid=[1,-1]", "key 'eval.c_grid' must be a non-empty list of values > 0, got [1.0, -1.0]"),
    ("seeds=[]", "key 'seeds' must be a non-empty list of unique ints, got []"),
    ("seeds=[0,0]", "key 'seeds' must be a non-empty list of unique ints, got [0, 0]"),
    ("data.batch_size=0", "key 'data.batch_size' must be >= 1, got 0"),
])
def test_out_of_range(tmp_path, override, message):
    assert error(tmp_path, MINIMAL, override) == message


def test_split_ratios_must_leave_a_test_split(tmp_path):
    message = error(tmp_path, MINIMAL, "eval.train_ratio=0.6", "eval.val_ratio=0.4")
    assert message.startswith("keys 'eval.train_ratio' + 'eval.val_ratio' must be < 1")


@pytest.mark.parametrize("override, message", [
    ("optim.name=adma", "key 'optim.name' must be one of adam, adamw, sgd; got 'adma' (did you mean 'adam'?)"),
    ("model.encoder.name=GCN", "key 'model.encoder.name' must be one of gcn, sage, gat, gin, mol_gin, resnet18, convnet, cpc_audio, tcn; got 'GCN' "
                               "(did you mean 'gcn'?)"),
    ("data.loader=xyz", "key 'data.loader' must be one of full, neighbor; got 'xyz'"),
    ("trainer.device=mps", "key 'trainer.device' must be one of auto, cpu, cuda; got 'mps'"),
    ("model.encoder.act=relu6", "key 'model.encoder.act' must be one of relu, prelu, elu, gelu, tanh, "
                                "leaky_relu; got 'relu6' (did you mean 'relu'?)"),
    ("eval.protocol=randm", "key 'eval.protocol' must be one of public, random, ogb, svm_cv, ogb_graph; got 'randm' "
                            "(did you mean 'random'?)"),
    ("augment.corruption=mask", "key 'augment.corruption' must be one of shuffle; got 'mask'"),
    ("model.init=glorot", "key 'model.init' must be one of default, xavier_uniform, dgl; got 'glorot'"),
])
def test_choice_fields(tmp_path, override, message):
    assert error(tmp_path, MINIMAL, override) == message


# --- round trip and saving -------------------------------------------------------------------------

def test_yaml_round_trip(tmp_path):
    cfg = load(tmp_path, MINIMAL, "optim.weight_decay=5e-4", "optim.lr=1e-5", "seeds=[3,1]",
               "model.params.temperature=0.5", "trainer.patience=20", "data.name=123")
    again = config_from_dict(yaml.safe_load(to_yaml(cfg)))
    assert again == cfg
    assert OmegaConf.to_container(again) == OmegaConf.to_container(cfg)


def test_config_from_dict_validates():
    with pytest.raises(ConfigError, match=r"^unknown key 'optim\.lrr' \(did you mean 'optim\.lr'\?\)$"):
        config_from_dict({"data": {"name": "Cora"}, "model": {"method": "dgi"}, "optim": {"lrr": 1}})
    with pytest.raises(ConfigError, match="must be a mapping"):
        config_from_dict([1, 2])


def test_save_config_is_atomic(tmp_path):
    cfg = load(tmp_path)
    path = tmp_path / "out" / "config.yaml"
    path.parent.mkdir()
    save_config(cfg, path)
    assert os.listdir(path.parent) == ["config.yaml"]
    assert config_from_dict(yaml.safe_load(path.read_text())) == cfg


def test_failed_save_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_config(load_config(None, ["data.name=Cora", "model.method=dgi"]), path)
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_schema_defaults_are_the_structured_base():
    base = OmegaConf.structured(RunConfig)
    assert OmegaConf.missing_keys(base) == {"data.name", "model.method"}
