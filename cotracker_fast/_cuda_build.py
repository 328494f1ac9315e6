"""Build of the CUDA extension ``cotracker_fast._C`` from ``csrc/``, shared by ``setup.py`` and the JIT loader.

It imports no torch (``setup.py`` runs it in pip's isolated build environment) and needs ``nvcc``, a C++ compiler and
``pybind11``. The sources include no torch headers, so the CPU-only torch wheel is enough to compile them.

Environment:
    TORCH_CUDA_ARCH_LIST   architectures, e.g. "8.0;9.0" or "8.0 9.0+PTX" (default "8.0;9.0": A100 and H100)
    MAX_JOBS               parallel compile jobs for ninja (default: ninja's choice)
    DEBUG=1                -O0 -G -lineinfo instead of -O3
    COTRACKER_FAST_NO_CUDA=1   skip the build (setup.py)

Debug recipe: ``DEBUG=1 TORCH_CUDA_ARCH_LIST="9.0" python -c "from cotracker_fast._cuda_build import build; build('b')"``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
DEFAULT_ARCHS = "8.0;9.0"


class CudaBuildError(RuntimeError):
    """The CUDA extension could not be built (the message holds the compiler output)."""


def sources() -> List[Path]:
    return sorted(CSRC.glob("*.cu")) + sorted(CSRC.glob("*.cpp"))


def nvcc_path() -> Optional[str]:
    found = shutil.which("nvcc")
    if found:
        return found
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    candidate = Path(home) / "bin" / "nvcc"
    return str(candidate) if candidate.exists() else None


def arch_flags(arch_list: Optional[str] = None) -> List[str]:
    """``-gencode`` flags for ``TORCH_CUDA_ARCH_LIST``-style entries ("8.0", "9.0+PTX", "sm_90"...)."""
    spec = arch_list or os.environ.get("TORCH_CUDA_ARCH_LIST") or DEFAULT_ARCHS
    flags = []
    for item in spec.replace(",", ";").replace(" ", ";").split(";"):
        item = item.strip()
        if not item:
            continue
        ptx = item.endswith("+PTX")
        num = item.replace("+PTX", "").replace("sm_", "").replace(".", "")
        if not num.isdigit():
            raise CudaBuildError(f"cannot parse architecture {item!r} in TORCH_CUDA_ARCH_LIST={spec!r}")
        flags += ["-gencode", f"arch=compute_{num},code=sm_{num}"]
        if ptx:
            flags += ["-gencode", f"arch=compute_{num},code=compute_{num}"]
    return flags


def _includes() -> List[str]:
    import pybind11

    return [f"-I{CSRC}", f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}"]


def build_params(arch_list: Optional[str] = None) -> dict:
    debug = os.environ.get("DEBUG", "0") not in ("", "0")
    return dict(
        arch=arch_flags(arch_list),
        opt=["-O0", "-G", "-lineinfo"] if debug else ["-O3", "-lineinfo"],
        sources={str(p.name): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sources()},
    )


def build(dest: str, *, arch_list: Optional[str] = None, verbose: bool = False) -> str:
    """Compile ``csrc/`` into the Python extension file ``dest`` (e.g. ``.../_C.cpython-311-x86_64-linux-gnu.so``).

    Objects go to a ``build`` folder beside ``dest``; ninja runs the build when it is installed, plain subprocess
    calls otherwise. Returns ``dest``. Raises :class:`CudaBuildError` with the compiler output on failure.
    """
    nvcc = nvcc_path()
    if nvcc is None:
        raise CudaBuildError("nvcc not found (put it on PATH or set CUDA_HOME)")
    dest_path = Path(dest).resolve()
    work = dest_path.parent / f"build-{dest_path.stem.split('.')[0]}"
    work.mkdir(parents=True, exist_ok=True)
    params = build_params(arch_list)
    inc = _includes()
    cu_flags = ["-std=c++17", "-Xcompiler", "-fPIC", "--expt-relaxed-constexpr", *params["opt"], *params["arch"], *inc]
    cxx = os.environ.get("CXX", "c++")
    cxx_flags = ["-std=c++17", "-fPIC", "-O2", "-fvisibility=hidden", *inc]
    objects, steps = [], []
    for src in sources():
        obj = work / (src.name + ".o")
        objects.append(obj)
        if src.suffix == ".cu":
            steps.append([nvcc, *cu_flags, "-c", str(src), "-o", str(obj)])
        else:
            steps.append([cxx, *cxx_flags, "-c", str(src), "-o", str(obj)])
    link = [nvcc, "-shared", "-Xcompiler", "-fPIC", *params["arch"], *map(str, objects), "-o", str(dest_path)]

    ninja = shutil.which("ninja")
    if ninja:
        _write_ninja(work / "build.ninja", steps, objects, link, dest_path)
        cmd = [ninja, "-f", str(work / "build.ninja")]
        if os.environ.get("MAX_JOBS"):
            cmd += ["-j", os.environ["MAX_JOBS"]]
        # run inside the build folder: ninja keeps its log (.ninja_log) in its working directory, which would
        # otherwise be the caller's (the repository root under `pip install`)
        _run(cmd, verbose, cwd=work)
    else:
        for step in steps + [link]:
            _run(step, verbose)
    return str(dest_path)


def _quote(args) -> str:
    return " ".join(a.replace(" ", "$ ") for a in map(str, args))


def _write_ninja(path: Path, steps, objects, link, dest: Path) -> None:
    lines = ["ninja_required_version = 1.3", "rule run", "  command = $cmd", "  description = $desc", ""]
    for step, obj in zip(steps, objects):
        src = step[step.index("-c") + 1]
        lines += [f"build {_quote([obj])}: run {_quote([src])}", f"  cmd = {_quote(step)}", f"  desc = compile {Path(src).name}"]
    lines += [f"build {_quote([dest])}: run {_quote(objects)}", f"  cmd = {_quote(link)}", f"  desc = link {dest.name}", ""]
    path.write_text("\n".join(lines))


def _run(cmd, verbose: bool, cwd: Optional[Path] = None) -> None:
    if verbose:
        print(" ".join(map(str, cmd)), flush=True)
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise CudaBuildError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}")
    if verbose and (proc.stdout or proc.stderr):
        print(proc.stdout, proc.stderr, flush=True)


def extension_filename() -> str:
    """``_C`` plus this interpreter's extension suffix."""
    return "_C" + sysconfig.get_config_var("EXT_SUFFIX")
