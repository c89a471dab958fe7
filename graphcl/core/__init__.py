"""Modality-free SSL core: energies, losses, memory bank, queue, momentum, heads, distributed gather."""
