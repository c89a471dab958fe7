"""Run configs: the structured schema, YAML + dotted overrides, validation and atomic saving."""
from .load import ConfigError, config_from_dict, load_config, save_config, to_yaml, with_seeds
from .schema import (
    AugmentConfig,
    DataConfig,
    EncoderConfig,
    EvalConfig,
    HeadsConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainerConfig,
)

__all__ = [
    "AugmentConfig", "ConfigError", "DataConfig", "EncoderConfig", "EvalConfig", "HeadsConfig",
    "ModelConfig", "OptimConfig", "RunConfig", "TrainerConfig",
    "config_from_dict", "load_config", "save_config", "to_yaml", "with_seeds",
]
