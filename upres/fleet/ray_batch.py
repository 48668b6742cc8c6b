"""`upres run --ray`: the batch as Ray actors, one whole image per task.

Ray does the scheduling, placement and retries; upres only says what one worker needs and what
one task is. Each worker actor builds its chain once and runs :meth:`BatchRunner.run_one`, the
same per-image code as a single-machine run: output written to a temporary name and renamed,
then its sidecar. So a killed worker leaves at most a temporary file, never a torn output; Ray
restarts the actor and retries the image; a rerun skips every image whose sidecar matches.

Ray is imported lazily: without ``upres[ray]`` nothing here is loaded unless ``--ray`` is given.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from upres.batch import BatchReport, BatchRunner, ImageResult, Progress, RunOptions, StopFlag
from upres.core.atomic import remove_temps
from upres.core.sizes import format_size
from upres.fleet.ray_worker import GPU_BACKENDS, ImageWorker, chain_spec
from upres.runtime.chain_factory import ChainSetup
from upres.runtime.inputs import Job, written_paths

LOCAL = "local"  # `--ray` without an address: start a Ray instance on this machine
TASK_RETRIES = 3  # attempts of one image beyond the first, each on a restarted worker
QUEUED_PER_WORKER = 2  # one running, one waiting: no idle gap between a worker's images
_WAIT_SECONDS = 1.0  # ray.wait slices, so SIGINT/SIGTERM are noticed while images run


class RayBatchError(RuntimeError):
    """The batch cannot run on this Ray cluster (no ray package, no cluster, no room)."""


@dataclass(frozen=True)
class WorkerRequest:
    """Resources one worker actor asks Ray for, read from the run's plan inputs."""

    num_cpus: int
    num_gpus: int
    memory: int  # bytes: the memory target the worker's planner keeps each image within

    def describe(self) -> str:
        gpus = f", {self.num_gpus} GPU" if self.num_gpus else ""
        return f"{self.num_cpus} CPU{gpus}, {format_size(self.memory)}"


def worker_request(setup: ChainSetup, opts: RunOptions) -> WorkerRequest:
    # --threads 0 means "all cores" on one machine; on a cluster, one core per worker and a
    # worker per core keeps every core busy without oversubscribing a node.
    gpus = 1 if setup.backend in GPU_BACKENDS else 0
    return WorkerRequest(max(1, opts.threads), gpus, opts.memory)


def worker_slots(nodes: list[dict[str, Any]], request: WorkerRequest) -> int:
    """How many workers fit on these nodes (``ray.nodes()`` records), each placed whole."""
    slots = 0
    for node in nodes:
        if not node.get("Alive", False):
            continue
        have = node.get("Resources", {})
        fits = [math.floor(have.get("CPU", 0) / request.num_cpus)]
        if request.num_gpus:
            fits.append(math.floor(have.get("GPU", 0) / request.num_gpus))
        if request.memory and "memory" in have:
            fits.append(math.floor(have["memory"] / request.memory))
        slots += max(0, min(fits))
    return slots


def _remote_job(job: Job) -> Job:
    # Workers do not share the driver's working directory: send absolute paths.
    return replace(job, source=job.source.absolute(), output=job.output.absolute(),
                   outdir=job.outdir.absolute() if job.outdir is not None else None)


def _remove_attempt_temps(jobs: list[Job]) -> None:
    """Temporary files of attempts whose worker died. Called when every task has returned and
    the OUTDIR lock is still held, so no live writer can own one; unlike the pid check of
    ``cleanup_stale_temps`` this holds when the writer ran on another node."""
    keep = [job.source for job in jobs] + written_paths(jobs)  # whatever their names
    for folder in sorted({job.output.parent for job in jobs}):
        if folder.is_dir():
            remove_temps(folder, keep=keep)


def _lost(job: Job, exc: BaseException, died: bool) -> ImageResult:
    """The result of an image whose task raised instead of returning one."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    what = f"the worker died {TASK_RETRIES + 1} times on this image" if died else "internal error"
    message = f"{job.source}: {what} ({type(exc).__name__}: {first})"
    return ImageResult(str(job.source), str(job.output), "failed", message)


class RayBatch:
    """A :data:`~upres.api.batch.BatchFn` that runs the jobs on a connected cluster."""

    def __init__(self, owns_session: bool) -> None:
        self.owns_session = owns_session  # shut Ray down afterwards (we connected, not the caller)

    def __call__(self, jobs: list[Job], setup: ChainSetup, opts: RunOptions, progress: Progress,
                 on_error: Callable[[str], None]) -> BatchReport:
        import ray

        try:
            return self._run(ray, jobs, setup, opts, progress, on_error)
        except RayBatchError as exc:
            # No worker could run (another model on a node, a package missing there): every
            # image fails with the one reason, said once.
            on_error(str(exc))
            return BatchReport([ImageResult(str(j.source), str(j.output), "failed", str(exc))
                                for j in jobs])
        finally:
            if self.owns_session:
                ray.shutdown()

    def _start_workers(self, ray: Any, setup: ChainSetup, opts: RunOptions, settings: dict[str, Any],
                       count: int) -> list[Any]:
        request = worker_request(setup, opts)
        actor = ray.remote(ImageWorker).options(
            num_cpus=request.num_cpus, num_gpus=request.num_gpus, memory=request.memory,
            max_restarts=-1, max_task_retries=TASK_RETRIES)
        spec = chain_spec(setup, request.num_cpus)
        # Every worker plans against the same target, which its resource request reserved.
        worker_opts = replace(opts, threads=request.num_cpus)
        workers = [actor.remote(spec, worker_opts, settings) for _ in range(count)]
        try:
            ray.get([w.pid.remote() for w in workers])  # surfaces a worker that cannot start
        except ray.exceptions.RayError as exc:
            for w in workers:
                ray.kill(w)
            raise RayBatchError(f"a Ray worker could not start: {exc}") from None
        return workers

    def _run(self, ray: Any, jobs: list[Job], setup: ChainSetup, opts: RunOptions, progress: Progress,
             on_error: Callable[[str], None]) -> BatchReport:
        report = BatchReport()
        if not jobs:
            return report
        driver = BatchRunner(setup, opts)
        driver.remove_stale_temps(jobs)
        request = worker_request(setup, opts)
        slots = worker_slots(ray.nodes(), request)
        if slots == 0:
            raise RayBatchError(f"no node of the Ray cluster can host a worker needing "
                                f"{request.describe()}; lower --memory or --threads, or add nodes")
        workers = self._start_workers(ray, setup, opts, driver.settings, min(slots, len(jobs)))
        remote = [_remote_job(job) for job in jobs]
        results: list[ImageResult | None] = [None] * len(jobs)
        running: dict[Any, tuple[int, int]] = {}  # object ref -> (job index, worker index)
        load = [0] * len(workers)
        submitted = 0
        try:
            with StopFlag() as stop:
                while True:
                    while submitted < len(jobs) and not stop.stopped:
                        w = min(range(len(workers)), key=load.__getitem__)
                        if load[w] >= QUEUED_PER_WORKER:
                            break
                        running[workers[w].process.remote(remote[submitted])] = (submitted, w)
                        load[w] += 1
                        submitted += 1
                    if not running:
                        break
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=_WAIT_SECONDS)
                    for ref in ready:
                        i, w = running.pop(ref)
                        load[w] -= 1
                        try:
                            result = ray.get(ref)
                        except ray.exceptions.RayActorError as exc:  # retries used up
                            result = _lost(jobs[i], exc, died=True)
                        except ray.exceptions.RayError as exc:
                            result = _lost(jobs[i], exc, died=False)
                        # The report names inputs as the user gave them, as a local run does.
                        result.source = str(jobs[i].source)
                        if result.status == "failed":
                            on_error(result.error)
                        results[i] = result
                        progress.image_finished(result)
                report.interrupted = stop.stopped and submitted < len(jobs)
                report.not_started = len(jobs) - submitted
        finally:
            for w in workers:
                ray.kill(w)
        _remove_attempt_temps(remote)
        report.results = [r for r in results if r is not None]
        return report


def connect(address: str, setup: ChainSetup, opts: RunOptions) -> RayBatch:
    """Join the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://...``) or, for
    :data:`LOCAL`, start one on this machine; check that a worker fits; return the batch."""
    try:
        import ray
    except ImportError:
        raise RayBatchError("--ray needs the ray package: pip install 'upres[ray]'") from None
    owns = not ray.is_initialized()  # a caller's own session (a notebook, a test) is kept
    if owns:
        common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING,
                                  "include_dashboard": False}
        try:
            if address == LOCAL:
                # A private instance for one run: it serves this machine only and does not
                # report usage statistics.
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                ray.init(_node_ip_address="127.0.0.1", **common)
            else:
                ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayBatchError(f"--ray {address}: cannot connect ({exc})") from None
    request = worker_request(setup, opts)
    if worker_slots(ray.nodes(), request) == 0:
        if owns:
            ray.shutdown()
        raise RayBatchError(f"--ray {address}: no node can host a worker needing "
                            f"{request.describe()}; lower --memory or --threads, or add nodes")
    return RayBatch(owns)
