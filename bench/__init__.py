"""Reproducible benchmarks: `make bench` (see bench/__main__.py).

Speed is reported as ratios against baselines measured in the same run,
because the machine is shared and noisy. Nothing here is imported by the
application; the baseline views exist only in the bench URLconf.
"""
