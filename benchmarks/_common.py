"""What the benchmark suites and the performance-doc generator share: the machine and commit a result comes from,
device synchronisation, and the atomic writes of result files, docs and plots.

Every file written by ``benchmarks/`` code goes through :func:`write_text` / :func:`write_results` /
:func:`save_figure`, i.e. :func:`cotracker_fast.io.atomic_output`: the data goes to a temporary file next to the
destination, which is renamed over it only once complete (an interrupted run leaves the old file intact).
"""
from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import torch

from cotracker_fast.io import atomic_output

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
#: Set (to anything non-empty) to have the suites write their records to :data:`RESULTS_DIR` (``make bench``).
SAVE_ENV = "COTRACKER_BENCH_SAVE"

PathLike = Union[str, "os.PathLike[str]"]


# ------------------------------------------------------------------------------------------------ machine, commit
def git_commit() -> Dict[str, Any]:
    """``{"commit": HEAD's sha or None, "dirty": uncommitted changes or None}`` of the repository."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return {"commit": sha.stdout.strip() or None, "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@functools.lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU's brand string (py-cpuinfo, a pytest-benchmark dependency), else ``platform.processor()``, with its
    family and model numbers when known: cloud CPUs report bare brands ("AMD EPYC") that hide their generation."""
    try:
        import cpuinfo

        info = cpuinfo.get_cpu_info()
    except Exception:
        info = {}
    name = info.get("brand_raw") or platform.processor() or "unknown CPU"
    if info.get("family") is not None and info.get("model") is not None:
        name += f" (family {info['family']}, model {info['model']})"
    return name


@functools.lru_cache(maxsize=None)
def device_name(kind: str) -> str:
    """The GPU's name for ``"cuda"``; ``"CPU: <brand> (<n> cores)"`` for ``"cpu"``."""
    if kind == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU: {cpu_name()} ({os.cpu_count()} cores)"


def device_info(kind: str) -> Dict[str, Any]:
    """Device kind and name, torch / Python / CUDA versions, CPU, core count and git commit."""
    info = {
        "device_kind": kind,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        **git_commit(),
        "device": device_name(kind),
    }
    if kind == "cuda":
        info["cuda"] = torch.version.cuda
    return info


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (``torch.cuda.synchronize`` on a GPU, nothing on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------------ atomic writes
def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(os.fspath(path)) as tmp:
        Path(tmp).write_text(text)
    return path


def write_results(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def save_figure(fig: Any, path: PathLike) -> Path:
    """``fig.savefig`` to ``path`` atomically, in the format its extension names (PNG without one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(os.fspath(path)) as tmp:
        fig.savefig(tmp, format=path.suffix[1:].lower() or "png")
    return path


# ------------------------------------------------------------------------------------------------ result files
class Recorder:
    """The records of one suite on one device kind, one per case.

    :meth:`save` writes them, when ``COTRACKER_BENCH_SAVE`` is set, to
    ``benchmarks/results/<suite>-<device>-<date>.json``: ``suite``, ``created``, the fields of :meth:`environment`,
    ``config``, ``methods`` (key -> label and notes) and ``results`` (the records). Subclasses set :attr:`suite` and
    define :meth:`environment`, :meth:`config` and :meth:`methods`.
    """

    suite: str = ""

    def __init__(self, kind: str):
        self.kind = kind
        self.records: List[dict] = []

    def environment(self) -> Dict[str, Any]:
        """Machine, versions and commit; must hold ``"device"``."""
        raise NotImplementedError

    def config(self) -> Dict[str, Any]:
        raise NotImplementedError

    def methods(self) -> Mapping[str, Any]:
        """The suite's methods by key (objects with ``label`` and ``notes``)."""
        raise NotImplementedError

    def save(self) -> Optional[Path]:
        """Write the records (see the class); the path, or None when not asked to or there is nothing to write."""
        if not os.environ.get(SAVE_ENV) or not self.records:
            return None
        env = self.environment()
        out = {
            "suite": self.suite,
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
            **env,
            "config": self.config(),
            "methods": {k: {"label": m.label, "notes": m.notes} for k, m in self.methods().items()},
            "results": self.records,
        }
        slug = f"cpu-{os.cpu_count()}core" if self.kind == "cpu" else env["device"].lower().replace(" ", "-")
        return write_results(RESULTS_DIR / f"{self.suite}-{slug}-{datetime.date.today().isoformat()}.json", out)


def save_all(recorders: Mapping[str, Recorder], what: str) -> None:
    """Save every recorder, printing ``"<what> results written to <path>"`` for each file written."""
    for rec in recorders.values():
        path = rec.save()
        if path is not None:
            print(f"\n{what} results written to {path}")


def save_cpu_suite(suite: str, rows: List[Any], config: Mapping[str, Any]) -> Path:
    """Write ``benchmarks/results/<suite>-<cpu>-<date>.json`` (atomically) with the CPU, thread count, torch
    version, commit, ``config`` and ``rows``; returns the path."""
    import re

    cpu = cpu_name()
    slug = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-") or "cpu"
    data = {"suite": suite, "created": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu,
            "threads": torch.get_num_threads(), "torch": torch.__version__, **git_commit(), "config": dict(config),
            "results": rows}
    return write_results(RESULTS_DIR / f"{suite}-{slug}-{datetime.date.today().isoformat()}.json", data)
