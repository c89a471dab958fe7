"""Image SSL: batched views (`views`), backbones (`backbones`), dataset loaders (`data`), methods (`methods`)."""
