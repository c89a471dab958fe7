"""The method registry: config name -> "module:Class", importable without torch (the CLI checks names and data
before its heavy imports). `graphcl.train.build.method_class` imports a class on first use.
"""
# A graph run never imports the image or sequence code.
METHODS: dict[str, str] = {
    **{name: f"graphcl.graph.methods:{cls}" for name, cls in [
        ("dgi", "DGI"), ("grace", "GRACE"), ("bgrl", "BGRL"), ("ccassg", "CCASSG"), ("graphmae", "GraphMAE"),
        ("mvgrl", "MVGRL"), ("graphcl", "GraphCL"), ("infograph", "InfoGraph")]},
    "mvgrl_graph": "graphcl.graph.methods.mvgrl_graph:MVGRLGraph",
    "graphmae_graph": "graphcl.graph.methods.graphmae_graph:GraphMAEGraph",
    "cpc": "graphcl.sequence.cpc:CPC",
    **{name: f"graphcl.vision.methods:{cls}" for name, cls in [
        ("simclr", "SimCLR"), ("moco", "MoCo"), ("pirl", "PIRL"), ("byol", "BYOL"), ("simsiam", "SimSiam"),
        ("vicreg", "VICReg"), ("barlowtwins", "BarlowTwins"), ("swav", "SwAV"), ("dino", "DINO")]},
}


def is_graph_method(name: str) -> bool:
    """Whether `name` is a registered node- or graph-level method (whose datasets the graph registry knows)."""
    return METHODS.get(name.lower(), "").startswith("graphcl.graph.")
