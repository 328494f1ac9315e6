// Host-side launchers of the CoTracker attention kernels (attention.cu), callable from plain C++.
// No CUDA or torch headers here: tensors cross as raw device addresses, shapes and strides (in elements), and the
// CUDA stream as an integer handle. Invalid arguments throw std::invalid_argument (ValueError in Python), launch
// failures std::runtime_error.
#pragma once
#include <cstdint>

namespace cotracker_fast {

// dtype codes shared with the Python wrapper
enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Time attention: every (batch, head) sequence of length L <= 32 stays on chip (one warp per sequence).
// qkv: (batch, L, 3, heads, head_dim) with strides (sb, sl, s3, sh, 1); out: (batch, L, heads * head_dim) contiguous.
void time_attention_fwd_cuda(std::uintptr_t qkv, std::uintptr_t out, std::int64_t batch, std::int64_t L,
                             std::int64_t heads, std::int64_t head_dim, std::int64_t sb, std::int64_t sl,
                             std::int64_t s3, std::int64_t sh, double scale, int dtype, std::uintptr_t stream);

// Group attention: flash-style online softmax over key tiles, any L in [1, 65536].
// key_mask: 0 or the address of a (batch, L) uint8 tensor with batch stride mask_sb (0 = masked-out key).
void group_attention_fwd_cuda(std::uintptr_t qkv, std::uintptr_t key_mask, std::uintptr_t out, std::int64_t batch,
                              std::int64_t L, std::int64_t heads, std::int64_t head_dim, std::int64_t sb,
                              std::int64_t sl, std::int64_t s3, std::int64_t sh, std::int64_t mask_sb, double scale,
                              int dtype, std::uintptr_t stream);

}  // namespace cotracker_fast
