// pybind11 module cotracker_fast._C: the attention launchers, taking device addresses as integers.
#include <pybind11/pybind11.h>

#include "attention.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "cotracker_fast CUDA kernels (raw-pointer launchers; see cotracker_fast/ops/cuda_attention.py)";
  m.def("time_attention_fwd_cuda", &cotracker_fast::time_attention_fwd_cuda, py::arg("qkv"), py::arg("out"),
        py::arg("batch"), py::arg("L"), py::arg("heads"), py::arg("head_dim"), py::arg("sb"), py::arg("sl"),
        py::arg("s3"), py::arg("sh"), py::arg("scale"), py::arg("dtype"), py::arg("stream"));
  m.def("group_attention_fwd_cuda", &cotracker_fast::group_attention_fwd_cuda, py::arg("qkv"), py::arg("key_mask"),
        py::arg("out"), py::arg("batch"), py::arg("L"), py::arg("heads"), py::arg("head_dim"), py::arg("sb"),
        py::arg("sl"), py::arg("s3"), py::arg("sh"), py::arg("mask_sb"), py::arg("scale"), py::arg("dtype"),
        py::arg("stream"));
}
