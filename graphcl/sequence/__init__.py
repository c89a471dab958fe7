"""CPC-style sequence encoders: strided / causal dilated conv encoders, autoregressive context networks,
k-step predictors, sequence views, and the CPC method."""
from graphcl.sequence.cpc import CPC, SequenceBatch
from graphcl.sequence.encoders import (CausalConvEncoder, CausalTransformerContext, GRUContext, SequenceEncoder,
                                       StridedConvEncoder, build_sequence_encoder)
from graphcl.sequence.steps import StepPredictors, cpc_loss, future_pairs, sample_negatives
from graphcl.sequence.views import SequenceView, random_crop

__all__ = ["CPC", "SequenceBatch", "SequenceEncoder", "StridedConvEncoder", "CausalConvEncoder", "GRUContext",
           "CausalTransformerContext", "build_sequence_encoder", "StepPredictors", "cpc_loss", "future_pairs",
           "sample_negatives", "SequenceView", "random_crop"]
