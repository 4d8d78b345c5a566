"""Support for checking minigan against references: used by the tests and benchmarks.

Nothing here is needed to train: ``pytorch`` imports PyTorch only when called, and
minigan itself never does.
"""
