"""Evaluation: datasets (manifests), metrics and benchmarks' shared plumbing."""
