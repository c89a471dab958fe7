"""The structured schema of a run: one dataclass per config section.

`load.py` merges YAML files and command-line overrides onto these defaults with OmegaConf, which
checks types; the allowed values and ranges that types cannot express are checked there too.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import MISSING

__all__ = [
    "AugmentConfig", "CHOICES", "DataConfig", "EncoderConfig", "EvalConfig", "HeadsConfig",
    "ModelConfig", "OptimConfig", "RunConfig", "TrainerConfig",
]


@dataclass
class DataConfig:
    name: str = MISSING                 # dataset name, matched case-insensitively by the registry
    root: Optional[str] = None          # data root; null falls back to $GRAPHCL_DATA, then ./datasets
    features: str = "auto"              # auto|degree|append_degree|constant (see graphcl.data.load_dataset)
    normalize_features: bool = False    # row-normalise X (DGI/GCN preprocessing)
    loader: str = "full"                # full-batch training or NeighborLoader mini-batches
    batch_size: int = 1                 # mini-batch size (seed nodes for the neighbor loader)
    num_neighbors: List[int] = field(default_factory=lambda: [10, 10])  # per hop; -1 takes all


@dataclass
class EncoderConfig:
    name: str = "gcn"                   # gcn|sage|gat|gin (PyG BasicGNN models), mol_gin (OGB molecules)
    hidden_channels: int = 512
    num_layers: int = 1
    out_channels: Optional[int] = None  # null keeps hidden_channels
    act: str = "prelu"
    dropout: float = 0.0
    norm: Optional[str] = None          # any PyG normalization name, e.g. batch_norm
    act_last: bool = True               # also activate the output layer (DGI, GRACE, BGRL do)
    norm_last: bool = False             # also normalise the output layer, before its activation (BGRL)
    shared_act: bool = True             # PyG's one activation module for every layer; false: one per use
    # Further keyword arguments of the PyG model, e.g. {heads: 4} for GAT or {train_eps: true} for GIN.
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class HeadsConfig:
    # Null means the method's own default (or no head for methods without one).
    projector_hidden: Optional[int] = None
    projector_out: Optional[int] = None
    predictor_hidden: Optional[int] = None


@dataclass
class ModelConfig:
    method: str = MISSING               # a name from graphcl.methods, e.g. dgi
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    # Method-specific keyword arguments (e.g. temperature); free-form here, checked by the method builder.
    params: Dict[str, Any] = field(default_factory=dict)
    # default: every layer's own initialisation | xavier_uniform: every Linear layer of the method (encoder and
    # heads) Glorot-uniform with zero bias, after it is built (InfoGraph's and GraphCL's init_emb) | dgl: every
    # GAT conv as DGL's GATConv starts (Xavier-normal weight and attention vectors with ReLU gain, zero bias;
    # GraphMAE's published runs), other layers unchanged
    init: str = "default"


@dataclass
class AugmentConfig:
    corruption: str = "shuffle"         # DGI's negative view
    # View settings of image, sequence and graph-level methods (crop scales, jitter, drop rates...); free-form
    # here, checked by the task that reads them.
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "adam"                  # adam|adamw|sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "none"             # none|cosine: per-epoch lr factor (1 + cos(pi e / epochs)) / 2
    warmup_epochs: int = 0              # cosine only: lr rises linearly from 0 over these epochs, then decays
                                        # (a warm-up as long as the run never decays: short test runs stay valid)


@dataclass
class TrainerConfig:
    epochs: int = 100
    patience: Optional[int] = None      # early stopping on the training loss; null trains all epochs
    device: str = "auto"                # auto picks cuda when available
    amp: bool = True                    # bf16 autocast, on CUDA only
    checkpoint_every: int = 10          # epochs between checkpoints
    progress: bool = True               # tqdm progress bar
    deterministic: bool = True          # deterministic algorithms where PyTorch has them
    diagnostics_every: int = 10         # epochs between representation diagnostics in metrics.jsonl; 0: never
    collapse_std: float = 0.01          # warn of collapse when per-dimension std < collapse_std / sqrt(D)


@dataclass
class EvalConfig:
    protocol: str = "public"            # public|random|ogb node splits, svm_cv|ogb_graph for graphs
    repeats: int = 1                    # random splits per seed
    train_ratio: float = 0.1            # random protocol only
    val_ratio: float = 0.1
    c_grid: List[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0])
    max_iter: int = 1000                # probe solver iterations
    folds: int = 10                     # svm_cv: outer stratified folds (C by inner CV on the training folds)
    jobs: int = 1                       # svm_cv: processes over the outer folds; -1 = one per core. A resource
                                        # setting: the figures do not depend on it
    # Node embeddings for evaluation: full (one forward over the whole graph) | layerwise (one layer at a time
    # over all nodes, in chunks of inference_batch_size nodes: large graphs) | auto (layerwise when data.loader
    # is neighbor, else full).
    inference: str = "auto"
    inference_batch_size: int = 4096    # nodes per chunk of layer-wise inference
    # Protocol settings of the image and sequence tasks (kNN k and temperature, forecast horizons...).
    params: Dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seeds: List[int] = field(default_factory=lambda: [0])  # one full run (pretrain + eval) per seed


# Allowed values of the string fields that name a choice, by dotted key.
CHOICES: Dict[str, Tuple[str, ...]] = {
    "model.init": ("default", "xavier_uniform", "dgl"),
    "data.features": ("auto", "degree", "append_degree", "constant"),
    "data.loader": ("full", "neighbor"),
    # PyG BasicGNN models; image backbones; sequence encoders
    "model.encoder.name": ("gcn", "sage", "gat", "gin", "mol_gin", "resnet18", "convnet", "cpc_audio", "tcn"),
    "model.encoder.act": ("relu", "prelu", "elu", "gelu", "tanh", "leaky_relu"),
    "augment.corruption": ("shuffle",),
    "optim.name": ("adam", "adamw", "sgd"),
    "optim.scheduler": ("none", "cosine"),
    "trainer.device": ("auto", "cpu", "cuda"),
    # node splits (public|random|ogb); graph classification (svm_cv; ogb_graph: a linear probe on OGB's split)
    "eval.protocol": ("public", "random", "ogb", "svm_cv", "ogb_graph"),
    "eval.inference": ("auto", "full", "layerwise"),
}
