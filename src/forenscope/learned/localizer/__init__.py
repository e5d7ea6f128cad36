"""A learned tamper localizer: per-block forensic features -> gradient-boosted trees -> map.

Trained only on synthetic forgeries made from real photos (`train.py`), evaluated on real tampered
images it never saw (`benchmarks/bench_localizer.py`). Inference needs numpy, scipy and Pillow
only: the trees are evaluated in numpy from a small `.npz` (see `trees.py`).
"""
