"""Build script for cotracker_fast.

The pure-Python package (``cotracker_fast``) is always installed. ``kernels/`` (Triton) is installed as
``cotracker_fast.kernels``. ``csrc/`` holds no CUDA sources yet, so the install is pure Python; the build of the
CUDA extension (when sources exist, ``nvcc`` is found and ``COTRACKER_FAST_NO_CUDA`` is not set) is wired in
together with the first kernels.
"""
import os
import shutil
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def _cuda_sources():
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "csrc").glob("*.cu"))


def _maybe_cuda_ext():
    if os.environ.get("COTRACKER_FAST_NO_CUDA", "0") not in ("", "0"):
        print("cotracker_fast: COTRACKER_FAST_NO_CUDA is set; skipping the CUDA extension.")
        return [], {}
    sources = _cuda_sources()
    if not sources:
        return [], {}
    if shutil.which("nvcc") is None:
        print("cotracker_fast: nvcc not found; skipping the CUDA extension (Triton/PyTorch backends only).")
        return [], {}
    raise RuntimeError(
        f"csrc/ holds CUDA sources {sources} but this setup.py does not build them yet; "
        "set COTRACKER_FAST_NO_CUDA=1 to install without them"
    )


ext_modules, cmdclass = _maybe_cuda_ext()

setup(
    packages=["cotracker_fast", "cotracker_fast.models", "cotracker_fast.ops", "cotracker_fast.kernels"],
    package_dir={"cotracker_fast.kernels": "kernels"},
    package_data={"cotracker_fast": ["assets/*"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
