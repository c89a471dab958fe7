"""Image SSL methods, each a short composition of `graphcl.core` parts (see each module's docstring)."""
from graphcl.vision.methods.base import ImageMethod
from graphcl.vision.methods.byol import BYOL
from graphcl.vision.methods.dino import DINO
from graphcl.vision.methods.moco import MoCo
from graphcl.vision.methods.pirl import PIRL
from graphcl.vision.methods.redundancy import BarlowTwins, VICReg
from graphcl.vision.methods.simclr import SimCLR
from graphcl.vision.methods.simsiam import SimSiam
from graphcl.vision.methods.swav import SwAV

__all__ = ["ImageMethod", "SimCLR", "MoCo", "PIRL", "BYOL", "SimSiam", "VICReg", "BarlowTwins", "SwAV", "DINO"]
