"""Distributed tuning: workers that share one Optuna study through its storage.

A phase of the search is a *job file* (JSON: calibration directory, storage, study prefix, tasks,
trial budget, deadline). ``svg-ear-tune --worker JOB --worker-index i`` runs it; the coordinator starts
``N`` such processes, one per visible GPU by default (``CUDA_VISIBLE_DEVICES`` set to one GPU each).
Another machine joins the same search by running the same command against the same storage (an RDB
URL, or a journal file on a shared filesystem) with a copy of the calibration directory.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from ..config import SvgEarConfig
from ..profiles import write_atomic
from ._calibration import CalibrationSet
from ._model import TunerError
from ._search import Task, open_storage, run_task


def write_job(path: pathlib.Path, job: dict[str, Any]) -> pathlib.Path:
    return write_atomic(path, json.dumps(job, indent=1))


def run_job(job: dict[str, Any], worker_index: int = 0, on_trial: Callable[[Task, int], None] | None = None) -> None:
    """Run every task of ``job`` in order (the layer studies), in this process."""
    calibration = CalibrationSet.load(job["calibration"])
    if calibration is None:
        raise TunerError(f"worker: no complete calibration capture in {job['calibration']!r}")
    storage = open_storage(job["storage"])
    tasks = [Task(*task) for task in job["tasks"]]
    base = SvgEarConfig.from_dict(job["base"])
    for index, task in enumerate(tasks):
        timeout = None
        if job.get("deadline") is not None:
            timeout = (job["deadline"] - time.time()) / (len(tasks) - index)
        run_task(task, storage=storage, prefix=job["prefix"], calibration=calibration, base=base,
                 n_trials=job["n_trials"], timeout=timeout, device=job["device"], repeats=job["repeats"],
                 seed=_task_seed(job["seed"], worker_index, task), run_calls=job["run_calls"],
                 on_trial=None if on_trial is None else (lambda done, task=task: on_trial(task, done)))


def _task_seed(seed: int, worker_index: int, task: Task) -> int:
    """The sampler seed of one worker's study of one layer and round: distinct per layer, or every layer's
    search would draw the same configs in the same order (seen on an H100: six layers, one budget)."""
    return seed + 7919 * worker_index + 104_729 * task.layer + task.round


def visible_gpus() -> list[str]:
    """The GPUs a worker may be pinned to, as ``CUDA_VISIBLE_DEVICES`` entries."""
    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [g.strip() for g in listed.split(",") if g.strip()][: torch.cuda.device_count()]
    return [str(i) for i in range(torch.cuda.device_count())]


def run_workers(job_path: pathlib.Path, workers: int, log_dir: pathlib.Path, poll: Callable[[], None]) -> None:
    """Start ``workers`` processes on ``job_path``, call ``poll()`` about once a second until all exit.

    Ctrl-C is passed on to the workers (each stops after marking its running trial failed); a worker that
    fails is a :class:`TunerError` quoting the end of its log.
    """
    gpus = visible_gpus()
    package_root = str(pathlib.Path(__file__).resolve().parents[2])
    log_dir.mkdir(parents=True, exist_ok=True)
    processes, logs = [], []
    for index in range(workers):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
        log = log_dir / f"worker{index}.log"
        logs.append(log)
        with open(log, "w") as handle:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "svg_ear_compile.tuner.cli", "--worker", str(job_path),
                 "--worker-index", str(index)], stdout=handle, stderr=subprocess.STDOUT, env=env,
                start_new_session=True))  # Ctrl-C reaches workers once, from here, not also from the terminal
    try:
        while any(p.poll() is None for p in processes):
            poll()
            time.sleep(1.0)
        poll()
    except KeyboardInterrupt:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        raise
    failed = [(i, p.returncode) for i, p in enumerate(processes) if p.returncode != 0]
    if failed:
        index, code = failed[0]
        tail = logs[index].read_text()[-2000:]
        raise TunerError(f"worker {index} exited with status {code}; end of {logs[index]}:\n{tail}")
