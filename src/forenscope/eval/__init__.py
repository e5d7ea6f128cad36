"""Evaluation: `forenscope eval` (issue 5) and the metrics the benchmarks share.

Modules: `datasets` (manifests, folder layouts, filters, masks), `align` (format alignment and
perturbations), `guards` (format/size confound warning), `protocol` (the System protocol and
the Prediction), `systems` / `baseline` / `llm_system` (what can be scored), `records` (the typed
per-sample record), `runner` + `journal` (resumable runs), `classification`,
`metrics` and `explanations` (pure metric functions), `summary`, `report`, `overlays`, `run`
(one evaluation end to end), `ablate` (MLLM prompt x k x n grids), `cli` (`eval_cli`).
Nothing here is imported by `import forenscope`.
"""
