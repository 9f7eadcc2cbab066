"""Beam jobs of duet, one module per job, with the pure functions they call."""
