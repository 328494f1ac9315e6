// Fused local correlation sampling on the CPU (float32): the C++ interface of corr_sample_cpu.cpp.
#pragma once

#include <cstdint>

namespace cotracker_fast_cpu {

// One pyramid level of the corr_sample op for every (frame, track).
//
//   fmap    float32 feature map of F = B*S frames, element (f, c, y, x) at
//           fmap[f*sf + c*sc + y*sh + x*sw] (any strides: NCHW or channels-last)
//   feats   float32 (F, N, C) contiguous track features
//   coords  float32 (F, N, 2) contiguous (x, y) in level-0 cells; this level reads coords * coord_scale
//   out     float32, the (2r+1)^2 values of (f, n) written at out[(f*N + n)*out_stride + out_offset + k],
//           k = (dx + r)*(2r+1) + (dy + r) (x-major), each value <feature at the bilinear sample, feat> / sqrt(C)
//           with zeros outside the map (align_corners=True, zero padding); NaN where a coordinate is not finite.
// Throws std::invalid_argument on bad sizes.
void corr_sample_level_fwd_cpu(uintptr_t fmap, int64_t F, int64_t C, int64_t H, int64_t W, int64_t sf, int64_t sc,
                               int64_t sh, int64_t sw, uintptr_t feats, uintptr_t coords, int64_t N,
                               double coord_scale, int64_t radius, uintptr_t out, int64_t out_stride,
                               int64_t out_offset, int threads);

}  // namespace cotracker_fast_cpu
