"""Benchmark evaluation: exact metric definitions (spec §8), dataset loaders, protocols and the
`bench` harness. Metric functions return fractions in [0, 1]; reports multiply mAP/F1 by 100."""
