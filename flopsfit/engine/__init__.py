"""Trains one run: the step, optimizer, mesh, checkpoints, FLOP count and loop."""
