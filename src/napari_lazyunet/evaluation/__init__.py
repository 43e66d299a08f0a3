"""Scoring and simulated labels: metrics of the benchmarks and the demo, lazy labels made
from exact instances. Pure numpy / SciPy; nothing here trains or predicts."""
