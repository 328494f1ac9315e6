"""Build script for cotracker_fast.

The pure-Python package (``cotracker_fast``) is always installed, with ``kernels/`` (Triton) as
``cotracker_fast.kernels``. The CUDA extension ``cotracker_fast._C`` (``csrc/``: attention kernels) is compiled with
``nvcc`` when it is found and ``COTRACKER_FAST_NO_CUDA`` is not set; otherwise one message says it was skipped and the
ops use the Triton / PyTorch backends. The build itself (architectures from ``TORCH_CUDA_ARCH_LIST``, ninja,
``MAX_JOBS``, ``DEBUG``) lives in ``cotracker_fast/_cuda_build.py``, shared with the JIT loader. The CPU kernels'
extension ``cotracker_fast._cpu`` (``csrc/cpu/``: fused correlation sampling, AVX512-BF16 attention) is compiled with
the C++ compiler unless ``COTRACKER_FAST_NO_CPU_EXT`` is set; where it fails, the ops use their PyTorch backends.
"""
import importlib.util
import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _builder():
    # loaded from its file: importing the cotracker_fast package would import torch, absent in pip's build env
    spec = importlib.util.spec_from_file_location("_cuda_build", ROOT / "cotracker_fast" / "_cuda_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CudaBuildExt(build_ext):
    """Builds ``cotracker_fast._C`` with nvcc (through ninja) instead of setuptools' compiler, and the CPU kernels'
    ``cotracker_fast._cpu`` with setuptools' C++ compiler; a failed CPU build is reported and skipped (the ops then
    keep to their PyTorch backends)."""

    def build_extension(self, ext):
        if ext.name == "cotracker_fast._C":
            _builder().build(self.get_ext_fullpath(ext.name), verbose=bool(self.verbose))
            return
        try:
            super().build_extension(ext)
        except Exception as err:  # noqa: BLE001 - any compiler failure: the package still works without it
            print(f"cotracker_fast: the CPU extension did not build ({err}); the PyTorch backends will be used.")


def _cpu_extension():
    """``cotracker_fast._cpu`` (``csrc/cpu/``): pybind11 and raw pointers, no torch headers. The AVX512 code carries
    per-function target attributes and is only called where the CPU has it, so one build runs on any x86-64."""
    if os.environ.get("COTRACKER_FAST_NO_CPU_EXT", "0") not in ("", "0"):
        print("cotracker_fast: COTRACKER_FAST_NO_CPU_EXT is set; skipping the CPU extension.")
        return []
    import pybind11

    return [Extension(
        "cotracker_fast._cpu",
        sources=[str(p.relative_to(ROOT)) for p in sorted((ROOT / "csrc" / "cpu").glob("*.cpp"))],
        include_dirs=[pybind11.get_include()],
        language="c++",
        extra_compile_args=["-O3", "-std=c++17", "-fopenmp-simd", "-fvisibility=hidden", "-Wno-maybe-uninitialized"],
        extra_link_args=["-pthread"],
    )]


def _ext_modules():
    if os.environ.get("COTRACKER_FAST_NO_CUDA", "0") not in ("", "0"):
        print("cotracker_fast: COTRACKER_FAST_NO_CUDA is set; skipping the CUDA extension.")
        return _cpu_extension()
    if _builder().nvcc_path() is None:
        print("cotracker_fast: nvcc not found; skipping the CUDA extension (Triton/PyTorch backends only).")
        return _cpu_extension()
    return [Extension("cotracker_fast._C", sources=[str(p.relative_to(ROOT)) for p in _builder().sources()])] + \
        _cpu_extension()


setup(
    packages=["cotracker_fast", "cotracker_fast.models", "cotracker_fast.ops", "cotracker_fast.evaluation", "cotracker_fast.data",
              "cotracker_fast.baselines", "cotracker_fast.io",
              "cotracker_fast.training",
              "cotracker_fast.kernels"],
    package_dir={"cotracker_fast.kernels": "kernels"},
    package_data={"cotracker_fast": ["assets/*", "assets/heldout/*"]},
    ext_modules=_ext_modules(),
    cmdclass={"build_ext": CudaBuildExt},
)
