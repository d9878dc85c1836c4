"""Where runs execute: in this process, on a local process pool, or on a Dask cluster.

Every executor does one thing: take picklable :class:`~sim.experiments.plan.Task` s and a function, and
yield ``(task, result)`` as runs finish, in any order. Which executor ran a run never changes its row.

- :class:`InProcess` — one after another, here (debugging, tiny experiments).
- :class:`ProcessPool` — ``workers`` processes on this machine (the default: all cores). A worker that
  dies mid-run (killed, out of memory) breaks the pool; the pool is rebuilt and only the runs that were
  in flight are run again, each at most ``max_attempts`` times.
- :class:`Dask` — an existing cluster (``address="tcp://host:8786"``) or a ``distributed.LocalCluster``
  started here (``local_workers=N``). No scheduler of our own: Dask's reschedules the runs of a worker
  that dies (``distributed.scheduler.allowed-failures`` times, then the run fails).

A run that raises is not retried (it would raise again: runs are deterministic); the experiment stops
with :class:`RunFailed`, naming the run. Runs already finished stay in the results store.

Workers never import from the current folder (a scenario repository, a downloads folder): a new Python
process puts its current folder first on ``sys.path``, so ours are started with ``PYTHONSAFEPATH=1``,
and then import with exactly this process's ``sys.path`` — which the command line cleans first
(:func:`forget_working_directory`).

Subclasses implement :meth:`Executor.map` and, if they hold resources, :meth:`Executor.close`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import ProcessPoolExecutor as _Pool
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sim.errors import CascadesimError
from sim.experiments.plan import Task

__all__ = [
    "Executor",
    "InProcess",
    "ProcessPool",
    "Dask",
    "RunFailed",
    "make_executor",
    "forget_working_directory",
]

Work = Callable[[Task], dict[str, Any]]


class RunFailed(CascadesimError):
    """A run raised, or its worker died more often than allowed; ``task`` says which run."""

    def __init__(self, task: Task, reason: str):
        params = ", ".join(f"{k}={v}" for k, v in task.columns if k not in ("scenario", "scenario_hash"))
        where = f"point {task.point}" + (f" ({params})" if params else "")
        super().__init__(f"run failed: {where}, replication {task.replication} (seed {task.seed}): {reason}")
        self.task = task
        self.reason = reason


_MAIN_GUARD = (
    " (before any run finished: if you run experiments from a script, the workers start by importing "
    'it, so put the code that runs them under `if __name__ == "__main__":`)'
)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Executor:
    """Runs tasks somewhere; override :meth:`map` (and :meth:`close` if something must be released)."""

    workers: int = 1
    description: str = "executor"

    def map(self, fn: Work, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Run ``fn(task)`` for every task; yield ``(task, result)`` as each finishes, in any order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release workers and connections."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcess(Executor):
    """Runs each task here, one after another."""

    description = "this process"

    def map(self, fn: Work, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Run the tasks in order."""
        for task in tasks:
            try:
                result = fn(task)
            except Exception as exc:
                raise RunFailed(task, _describe(exc)) from exc
            yield task, result


def forget_working_directory() -> None:
    """Take the current folder off ``sys.path``, where ``python -m`` and ``python -c`` put it.

    Worker processes import with this process's ``sys.path``: with the current folder on it, a
    ``numbers.py`` or ``yaml.py`` lying there would run in every worker. The folder cascadesim itself
    is imported from stays (a source checkout, run in place, is the code being run).
    """
    try:
        here = Path.cwd().resolve()
    except OSError:  # the folder was removed: nothing can be imported from it
        return
    own = Path(__file__).resolve().parents[2]
    sys.path[:] = [
        p for p in sys.path if not isinstance(p, str) or here == own or Path(p or ".").resolve() != here
    ]


@contextlib.contextmanager
def _safe_path() -> Iterator[None]:
    """Python processes started inside the block do not put their current folder on ``sys.path``."""
    before = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        _restore_safe_path(before)


def _restore_safe_path(before: str | None) -> None:
    if before is None:
        os.environ.pop("PYTHONSAFEPATH", None)
    else:
        os.environ["PYTHONSAFEPATH"] = before


def _context() -> Any:
    """Worker processes start from a fork server that has imported cascadesim once (fast, and safe in a
    parent that runs threads — a progress bar, a Dask client); where there is none, they are spawned.
    Call it, and start the workers, inside :func:`_safe_path`.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["sim.experiments.runner"])
        forkserver.ensure_running()  # now, while PYTHONSAFEPATH is set (it is started once per process)
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - Windows


def _cores() -> int:
    """Cores this process may run on (fewer than the machine's under an affinity mask)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1  # pragma: no cover - macOS, Windows


class ProcessPool(Executor):
    """``workers`` processes on this machine (default: one per core); see the module docstring."""

    def __init__(self, workers: int | None = None, max_attempts: int = 3):
        self.workers = max(1, workers or _cores())
        self.max_attempts = max_attempts
        self.description = f"process pool, {self.workers} worker{'s' if self.workers != 1 else ''}"
        self._pool: _Pool | None = None

    def _get_pool(self) -> _Pool:
        if self._pool is None:
            with _safe_path():
                self._pool = _Pool(max_workers=self.workers, mp_context=_context())
        return self._pool

    def map(self, fn: Work, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Keep every worker busy (two tasks queued each); rebuild the pool when a worker dies."""
        pending: deque[Task] = deque(tasks)
        attempts: dict[str, int] = {}
        inflight: dict[Future, Task] = {}
        window = 2 * self.workers
        clean = succeeded = False
        try:
            while pending or inflight:
                pool = self._get_pool()
                broken = False
                while pending and len(inflight) < window:
                    task = pending.popleft()
                    try:
                        with _safe_path():  # a submit may start a worker (spawned, without a fork server)
                            inflight[pool.submit(fn, task)] = task
                    except BrokenProcessPool:
                        pending.appendleft(task)
                        broken = True
                        break
                if not broken:
                    done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for future in done:
                        task = inflight.pop(future)
                        exc = future.exception()
                        if exc is None:
                            succeeded = True
                            yield task, future.result()
                        elif isinstance(exc, BrokenProcessPool):
                            broken = True
                            inflight[future] = task  # run again below
                        else:
                            raise RunFailed(task, _describe(exc)) from exc
                if broken:
                    # A worker died. Its pool is unusable; what finished before is kept, the rest re-runs.
                    for future in list(inflight):
                        if future.done() and future.exception() is None:
                            yield inflight.pop(future), future.result()
                    again = list(inflight.values())
                    inflight.clear()
                    self._discard_pool()
                    for task in reversed(again):
                        attempts[task.run_id] = attempts.get(task.run_id, 1) + 1
                        if attempts[task.run_id] > self.max_attempts:
                            hint = "" if succeeded else _MAIN_GUARD
                            raise RunFailed(task, f"its worker process died {self.max_attempts} times{hint}")
                        pending.appendleft(task)
            clean = True
        finally:
            if not clean:
                for future in inflight:
                    future.cancel()
                self._discard_pool()

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())  # workers of this pool only
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=5)

    def close(self) -> None:
        """Stop the workers (waiting for none: every run they had was collected or cancelled)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class Dask(Executor):
    """Runs on a Dask cluster: ``address`` of a running scheduler, or ``local_workers`` processes here.

    Workers need cascadesim installed (the same version: the rows carry it). ``client`` uses a
    ``distributed.Client`` you already have. A local cluster's workers are started with
    ``PYTHONSAFEPATH=1`` (see the module docstring).
    """

    def __init__(self, address: str | None = None, *, local_workers: int | None = None, client: Any = None):
        import dask
        from distributed import Client, LocalCluster

        self._cluster = None
        self._safe_path_before = os.environ.get("PYTHONSAFEPATH")
        self._own_client = client is None
        if client is not None:
            self.client = client
            where = "your Dask client"
        elif local_workers:
            # The nannies spawn the workers with PYTHONSAFEPATH set; to respawn one that dies, Dask sets it in
            # this process again, until close().
            with _safe_path(), dask.config.set({"distributed.nanny.pre-spawn-environ.PYTHONSAFEPATH": "1"}):
                self._cluster = LocalCluster(
                    n_workers=local_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
            self.client = Client(self._cluster)
            where = f"a local Dask cluster of {local_workers} worker{'s' if local_workers != 1 else ''}"
        elif address:
            self.client = Client(address, timeout="30s")
            where = f"the Dask cluster at {address}"
        else:
            raise ValueError("give a scheduler address, local_workers or a client")
        info = self.client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        self.description = f"{where} ({self.workers} thread{'s' if self.workers != 1 else ''})"

    def map(self, fn: Work, tasks: Iterable[Task]) -> Iterator[tuple[Task, dict[str, Any]]]:
        """Submit a window of tasks ahead of the workers; yield each result as it arrives."""
        from distributed import as_completed

        pending = deque(tasks)
        window = max(32, 4 * self.workers)
        futures: dict[Any, Task] = {}
        results = as_completed()

        def submit() -> None:
            task = pending.popleft()
            future = self.client.submit(
                fn, task, pure=False, key=f"cascadesim-run-{task.run_id}-{uuid.uuid4().hex[:8]}"
            )
            futures[future] = task
            results.add(future)

        try:
            while pending and len(futures) < window:
                submit()
            for future in results:
                task = futures.pop(future)
                if future.status == "error":
                    exc = future.exception()
                    reason = _describe(exc)
                    if type(exc).__name__ == "KilledWorker":
                        reason = f"the Dask workers running it died too often ({exc})"
                    raise RunFailed(task, reason) from exc
                yield task, future.result()
                future.release()
                if pending:
                    submit()
        finally:
            if futures:
                self.client.cancel(list(futures))

    def close(self) -> None:
        """Close the client (and the local cluster, if this executor started it)."""
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            _restore_safe_path(self._safe_path_before)


def make_executor(
    workers: int | None = None, dask_scheduler: str | None = None, dask_local: int | None = None
) -> Executor:
    """The executor the command-line options ask for (default: a process pool of all cores)."""
    if dask_scheduler and dask_local:
        raise ValueError("give --dask-scheduler or --dask-local, not both")
    if dask_scheduler or dask_local:
        return Dask(dask_scheduler, local_workers=dask_local)
    if workers == 0:
        return InProcess()
    return ProcessPool(workers)
