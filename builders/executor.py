"""Where a build's tasks run: a forked process pool on this machine, or Ray tasks on a cluster.

Both give the same thing to the build, an object whose ``submit(fn, *args)`` returns a
``concurrent.futures.Future`` that yields ``fn``'s result or raises ``fn``'s own exception, so the code that
collects results (and the one-line messages a user sees) does not depend on where the work ran. Leaving the
context stops the work: queued tasks are dropped and running ones are awaited (process pool) or interrupted and
awaited (Ray), so nothing writes into a folder the caller removes afterwards.

Ray tasks read their inputs and write their outputs at the paths they are given, as the pool's workers do.
On one machine that is the same filesystem. Across machines every node must see the source footage and the
output folder at the same paths (a shared filesystem such as NFS), and have this package installed. Returning
the JPEG bytes to the caller to write instead would spare the shared output folder but not the shared input,
and would make one process the only writer of every file, when creating a crop file is the costliest step after
decoding (0.5-0.9 ms per 12 kB crop on a 2-core build machine, against 0.02 ms to hash it); on one machine the
two ways measured the same speed, so writes stay with the tasks. Task inputs are small (a 32-frame chunk of 720p
footage pickles to under 25 kB), so they travel as plain task arguments, with no ``ray.put`` per video.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from types import MappingProxyType, ModuleType
from typing import Any, Protocol, TypeVar

from vreid_bench.errors import ConfigError, UnknownNameError

EXECUTORS = ("process", "ray")
RAY_QUIET = MappingProxyType({"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING})

T = TypeVar("T")


class TaskExecutor(Protocol):
    """The part of ``concurrent.futures.Executor`` a build uses."""

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]: ...


def check_executor(kind: str, workers: int, address: str | None = None) -> None:
    """Refuse a bad executor choice before anything is read or written."""
    if kind not in EXECUTORS:
        raise UnknownNameError(f"unknown executor {kind!r}: use one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError(f"--workers {workers} is invalid; use 1 or more")
    if address is not None and kind != "ray":
        raise ConfigError(f"--ray-address {address} is only used with --executor ray; add it or drop the address")
    if kind == "ray":
        _import_ray()


@contextmanager
def make_executor(kind: str, workers: int, address: str | None = None,
                  initializer: Callable[[], None] | None = None, fresh: bool = False) -> Iterator[TaskExecutor]:
    """An executor of ``kind`` ("process" or "ray") for the duration of the ``with`` block.

    ``process``: ``workers`` forked processes on this machine, ``initializer`` run once before they are forked;
    with ``fresh``, spawned interpreters instead (for tasks that run torch), each running ``initializer``.
    ``ray``: one task per ``submit``, each asking for one CPU, with ``initializer`` run before each task (so it
    must be cheap and idempotent). The cluster: ``address`` when given (``host:port`` of its head node), else
    Ray's ``auto``, the one named by ``RAY_ADDRESS`` or running on this machine (``ray start --head``), else a local
    instance of ``workers`` CPUs, started here and stopped at the end. On a cluster every CPU it offers takes
    tasks. A process already connected to Ray keeps that connection.
    """
    check_executor(kind, workers, address)
    if kind == "process" and fresh:
        with _spawned_pool(workers, initializer) as pool:
            yield pool
    elif kind == "process":
        with _process_pool(workers, initializer) as pool:
            yield pool
    else:
        with _ray_tasks(workers, address, initializer) as tasks:
            yield tasks


# ------------------------------------------------------------------------------------------- process pool


@contextmanager
def _process_pool(workers: int, initializer: Callable[[], None] | None) -> Iterator[ProcessPoolExecutor]:
    """A pool of forked workers whose queued tasks are dropped, and running ones awaited, when the block is left.

    Forked, not spawned: a spawned worker re-imports the caller's ``__main__`` (a third of the build's throughput
    on 2 cores, and impossible for a script piped on stdin). A forked child must not touch a thread pool the
    parent had running, so OpenCV runs single-threaded in the parent while the pool exists and the children
    inherit that (``initializer`` therefore runs in the parent, once, not in each child); the parent's thread
    count is restored afterwards. Workers are forked at once, before the caller starts threads of its own.
    """
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    if initializer is not None:
        initializer()
    try:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"))
        pool.submit(int).result()  # start the workers now
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        cv2.setNumThreads(threads)


@contextmanager
def _spawned_pool(workers: int, initializer: Callable[[], None] | None) -> Iterator[ProcessPoolExecutor]:
    """Workers started as fresh interpreters, for tasks that run torch (a detector).

    torch's OpenMP pool does not survive a fork once the parent has used it, and a fresh interpreter's import
    cost is nothing beside detecting a whole video. Spawning re-imports the caller's ``__main__``, so a script
    piped on stdin cannot use it (run it from a file).
    """
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=initializer)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------------------------------- Ray


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the ray package: pip install ray, or use --executor process") from None
    return ray


def _connect(ray: ModuleType, workers: int, address: str | None) -> None:
    """Join the cluster at ``address``, or the one ``auto`` finds, or start a local instance."""
    try:
        ray.init(address=address or "auto", **RAY_QUIET)
    except ConnectionError as error:
        if address is not None:
            raise ConfigError(f"--ray-address {address}: no Ray cluster answers there ({error}); start one with "
                              "`ray start --head` or leave --ray-address out for a local instance") from None
        ray.init(num_cpus=workers, **RAY_QUIET)


def _run_task(initializer: Callable[[], None] | None, fn: Callable[..., T], *args: Any) -> T:
    """The body of every Ray task: the worker-process setup a pool would run once, then the function."""
    if initializer is not None:
        initializer()
    return fn(*args)


class RayTasks:
    """Runs each submitted call as a Ray task; its future raises the call's own exception, not Ray's wrapper."""

    def __init__(self, ray: ModuleType, initializer: Callable[[], None] | None) -> None:
        self._ray = ray
        self._initializer = initializer
        self._task = ray.remote(num_cpus=1)(_run_task)  # exported to the cluster once, not per call
        self._refs: list[Any] = []

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        ref = self._task.remote(self._initializer, fn, *args)
        self._refs.append(ref)
        return self._unwrapped(ref.future())

    def _unwrapped(self, ray_future: Future[T]) -> Future[T]:
        """A future that fails with the task's exception itself (its Ray wrapper prints the remote traceback in
        its message), keeping the wrapper as the cause for a full traceback."""
        future: Future[T] = Future()

        def settle(done: Future[T]) -> None:
            error = done.exception()
            if error is None:
                future.set_result(done.result())
            elif isinstance(error, self._ray.exceptions.RayTaskError) and isinstance(error.cause, BaseException):
                error.cause.__cause__ = error
                future.set_exception(error.cause)
            else:
                future.set_exception(error)

        ray_future.add_done_callback(settle)
        return future

    def stop(self) -> None:
        """Cancel the tasks that have not finished and wait until each has stopped."""
        if not self._refs:
            return
        _, unfinished = self._ray.wait(self._refs, num_returns=len(self._refs), timeout=0)
        for ref in unfinished:
            self._ray.cancel(ref)
        if unfinished:
            self._ray.wait(unfinished, num_returns=len(unfinished), timeout=None)
        self._refs.clear()


@contextmanager
def _ray_tasks(workers: int, address: str | None, initializer: Callable[[], None] | None) -> Iterator[RayTasks]:
    ray = _import_ray()
    connected_here = not ray.is_initialized()
    if connected_here:
        _connect(ray, workers, address)
    tasks = RayTasks(ray, initializer)
    try:
        yield tasks
    finally:
        try:
            tasks.stop()
        finally:
            if connected_here:
                ray.shutdown()  # disconnects from a cluster; stops a local instance started here
