"""Prometheus text-format metrics, kept per app (no global registry, no extra dependency)."""

from __future__ import annotations

import threading
from collections import defaultdict

# Seconds; analysis requests take 0.1-10 s, reads a few ms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(**kw: str) -> str:
    parts = []
    for key, value in kw.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{key}="{escaped}"')
    return "{" + ",".join(parts) + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency_buckets: dict[tuple[str, str], list[int]] = {}
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.latency_count: dict[tuple[str, str], int] = defaultdict(int)
        self.analyses: dict[tuple[str, str], int] = defaultdict(int)
        self.analysis_failures: dict[str, int] = defaultdict(int)
        self.rate_limited = 0

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, str(status))] += 1
            key = (method, route)
            counts = self.latency_buckets.setdefault(key, [0] * len(BUCKETS))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            self.latency_sum[key] += seconds
            self.latency_count[key] += 1

    def observe_analysis(self, label: str, cached: bool) -> None:
        with self._lock:
            self.analyses[(label, "true" if cached else "false")] += 1

    def observe_failure(self, error_type: str) -> None:
        with self._lock:
            self.analysis_failures[error_type] += 1

    def observe_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def render(self, *, stored_analyses: int, busy: int, pending: int) -> str:
        out: list[str] = []
        with self._lock:
            out += ["# HELP forenscope_http_requests_total HTTP requests by route and status.",
                    "# TYPE forenscope_http_requests_total counter"]  # fmt: skip
            for (method, route, status), n in sorted(self.requests.items()):
                lab = _labels(method=method, route=route, status=status)
                out.append(f"forenscope_http_requests_total{lab} {n}")
            out += ["# HELP forenscope_http_request_duration_seconds Request latency.",
                    "# TYPE forenscope_http_request_duration_seconds histogram"]  # fmt: skip
            for (method, route), counts in sorted(self.latency_buckets.items()):
                name = "forenscope_http_request_duration_seconds"
                for bound, n in zip(BUCKETS, counts, strict=True):
                    lab = _labels(method=method, route=route, le=str(bound))
                    out.append(f"{name}_bucket{lab} {n}")
                total = self.latency_count[(method, route)]
                out.append(f"{name}_bucket{_labels(method=method, route=route, le='+Inf')} {total}")
                out.append(f"{name}_sum{_labels(method=method, route=route)} "
                           f"{self.latency_sum[(method, route)]:.6f}")  # fmt: skip
                out.append(f"{name}_count{_labels(method=method, route=route)} {total}")
            out += ["# HELP forenscope_analyses_total Analyses completed by this process.",
                    "# TYPE forenscope_analyses_total counter"]  # fmt: skip
            for (label, cached), n in sorted(self.analyses.items()):
                out.append(f"forenscope_analyses_total{_labels(label=label, cached=cached)} {n}")
            out += ["# HELP forenscope_analysis_failures_total Inputs refused or failed.",
                    "# TYPE forenscope_analysis_failures_total counter"]  # fmt: skip
            for error, n in sorted(self.analysis_failures.items()):
                out.append(f"forenscope_analysis_failures_total{_labels(error=error)} {n}")
            out += ["# TYPE forenscope_rate_limited_total counter",
                    f"forenscope_rate_limited_total {self.rate_limited}"]  # fmt: skip
        out += [
            "# HELP forenscope_stored_analyses Analyses in the store (all processes).",
            "# TYPE forenscope_stored_analyses gauge",
            f"forenscope_stored_analyses {stored_analyses}",
            "# TYPE forenscope_analyses_in_progress gauge",
            f"forenscope_analyses_in_progress {busy}",
            "# TYPE forenscope_analyses_pending gauge",
            f"forenscope_analyses_pending {pending}",
        ]
        return "\n".join(out) + "\n"
