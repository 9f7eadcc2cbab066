"""duet: precomputed data for contrastive music-representation learning."""

__version__ = "0.1.0"
