"""`--engine ray`: the local engine's per-sample work as Ray tasks, journaled by the driver.

The driver stays the only journal writer, so resume and de-duplication are the local engine's
(`runner.pending`, `Journal.add`). It submits `runner.worker_score` for each pending sample with
at most `IN_FLIGHT_PER_CPU` tasks per cluster CPU in flight and journals results in completion
order. Workers read the sample files themselves: on a multi-node cluster the dataset must sit at
the same path on every node and forenscope must be installed there.

Ray is an optional extra (`forenscope[ray]`) and is imported only here, on use.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

from ..errors import ConfigError, MissingDependencyError
from .align import Preprocess
from .datasets import Sample
from .journal import Journal
from .protocol import ScorerFactory
from .records import SampleRecord
from .runner import Progress, base_record, pending, worker_score

IN_FLIGHT_PER_CPU = 4  # as the local engine: enough to keep workers busy, memory stays bounded
TASK_RETRIES = 1  # Ray re-runs a task whose worker died once; a second death is the sample's


def import_ray() -> Any:
    """The `ray` module, or MissingDependencyError naming the extra to install."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise MissingDependencyError("--engine ray", "ray", "ray") from exc


@contextmanager
def ray_session(address: str | None, jobs: int) -> Iterator[Any]:
    """Ray, connected. A Ray already initialised in this process is reused and left running;
    `address` joins that cluster; otherwise a private local instance with `jobs` CPUs is started
    (no dashboard, worker logs kept out of the driver's output) and stopped afterwards."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"log_to_driver": False, "configure_logging": False}
    if address:
        try:
            ray.init(address=address, **quiet)
        except ConnectionError as exc:  # wrong address, cluster down, or its auth token missing
            raise ConfigError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    else:
        # Usage-stats reporting is on by default in Ray: it would be a local run's one
        # connection beyond this machine. An explicit RAY_USAGE_STATS_ENABLED=1 still wins.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address="local", num_cpus=jobs, include_dashboard=False, **quiet)
    try:
        yield ray
    finally:
        ray.shutdown()


def _result(ray: Any, ref: Any, sample: Sample) -> SampleRecord:
    """The task's record; a worker that died on this sample (twice) is an error value too.

    Any other failure (e.g. the system cannot be built on the workers) is not the sample's
    fault: it propagates, nothing is journaled for the sample and a resume retries it."""
    try:
        done: SampleRecord = ray.get(ref)
        return done
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError) as exc:
        rec = base_record(sample)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        rec.error = f"{type(exc).__name__}: worker died scoring this sample: {first}"
        return rec


def run_ray(
    build: ScorerFactory,
    spec: str,
    samples: Sequence[Sample],
    pre: Preprocess,
    journal: Journal,
    *,
    jobs: int = 1,
    address: str | None = None,
    progress: Progress | None = None,
) -> None:
    """Score every sample not yet in the journal on Ray (see the module docstring)."""
    todo = pending(samples, journal)
    if not todo:  # a finished run resumes without starting a cluster
        return
    tick = progress or (lambda n: None)
    with ray_session(address, jobs) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 0)) or jobs
        limit = IN_FLIGHT_PER_CPU * cpus
        task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(worker_score)
        pre_ref = ray.put(pre)
        in_flight: dict[Any, Sample] = {}
        queue = iter(todo)
        try:
            while True:
                for s in islice(queue, limit - len(in_flight)):
                    in_flight[task.remote(build, spec, pre_ref, s)] = s
                if not in_flight:
                    break
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    journal.add(_result(ray, ref, in_flight.pop(ref)))
                    tick(1)
        finally:
            for ref in in_flight:  # after an error or Ctrl-C, on a cluster that outlives us
                ray.cancel(ref)
