// pybind11 module cotracker_fast._cpu: the CPU kernels, called from Python with raw addresses and shapes. The GIL is
// released while they run.
#include <pybind11/pybind11.h>

#include "attention_cpu.h"
#include "corr_sample_cpu.h"

namespace py = pybind11;
using namespace cotracker_fast_cpu;

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "cotracker_fast CPU kernels (fused correlation sampling, AVX512-BF16 attention)";
  m.def("corr_sample_level_fwd_cpu", &corr_sample_level_fwd_cpu, py::call_guard<py::gil_scoped_release>(),
        "One pyramid level of corr_sample (float32); see csrc/cpu/corr_sample_cpu.h");
  m.def("attention_bf16_supported", &attention_bf16_supported,
        "True when this CPU executes AVX512-BF16 (the attention kernel needs it)");
  m.def("attention_bf16_fwd_cpu", &attention_bf16_fwd_cpu, py::call_guard<py::gil_scoped_release>(),
        "bf16 multi-head attention; see csrc/cpu/attention_cpu.h");
}
