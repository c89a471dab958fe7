"""CPC-style sequence encoders (see the sequence issue)."""
