// bfloat16 multi-head attention on CPUs with AVX512-BF16: the C++ interface of attention_cpu.cpp.
#pragma once

#include <cstdint>

namespace cotracker_fast_cpu {

// True when this CPU executes AVX512F, AVX512BW and AVX512-BF16 (checked at run time; the kernel needs them).
bool attention_bf16_supported();

// out = softmax(q k^T * scale) v per (batch, head), no causal mask, optional key mask.
//
//   qkv   bfloat16, element (b, l, i, h, d) (i = 0/1/2 for q/k/v) at qkv[b*sb + l*sl + i*s3 + h*sh + d]
//   mask  0, or uint8 (Bt, L) with row stride mask_sb: keys whose byte is 0 are ignored
//   out   bfloat16 (Bt, L, H*D) contiguous
// head_dim D in {32, 48, 64}; scores, softmax statistics and accumulation in float32, the probabilities rounded to
// bfloat16 before they multiply v (as flash-attention kernels do). A query whose keys are all masked gets NaN.
// Throws std::invalid_argument on bad sizes and std::runtime_error when the CPU lacks AVX512-BF16.
void attention_bf16_fwd_cpu(uintptr_t qkv, uintptr_t mask, uintptr_t out, int64_t Bt, int64_t L, int64_t H, int64_t D,
                            int64_t sb, int64_t sl, int64_t s3, int64_t sh, int64_t mask_sb, double scale, int threads);

}  // namespace cotracker_fast_cpu
