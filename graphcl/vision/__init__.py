"""Image views, small backbones and image methods (see the vision issue)."""
