// Fused local correlation sampling on the CPU (see corr_sample_cpu.h).
//
// Bilinear sampling is linear, so each sampled correlation equals a bilinear blend of dot products at integer cells.
// All (2r+1)^2 offsets are integers, so one point needs the dot products of its feature with the (2r+2)^2 cells
// around it, blended with the same two weights (fx, fy) everywhere. Per point and level this reads (2r+2)^2 * C
// floats of the map and writes (2r+1)^2 values: nothing else is materialised.
#include "corr_sample_cpu.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "parallel.h"

namespace cotracker_fast_cpu {
namespace {

constexpr int64_t kMaxRadius = 15;

// Dot product of C contiguous floats; the loop vectorises (the reduction order differs from a sequential sum by
// float32 rounding only).
__attribute__((target_clones("avx512f", "avx2", "default"))) float dot_contiguous(const float* a, const float* b,
                                                                                   int64_t n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

// dots[x] += f * row[x * sw] for the `count` cells of one row and one channel (the strided-channel layout).
__attribute__((target_clones("avx512f", "avx2", "default"))) void axpy_row(float* dots, const float* row, int64_t sw,
                                                                            float f, int64_t count) {
  if (sw == 1) {
#pragma omp simd
    for (int64_t x = 0; x < count; ++x) dots[x] += f * row[x];
  } else {
    for (int64_t x = 0; x < count; ++x) dots[x] += f * row[x * sw];
  }
}

}  // namespace

void corr_sample_level_fwd_cpu(uintptr_t fmap_addr, int64_t F, int64_t C, int64_t H, int64_t W, int64_t sf,
                               int64_t sc, int64_t sh, int64_t sw, uintptr_t feats_addr, uintptr_t coords_addr,
                               int64_t N, double coord_scale, int64_t radius, uintptr_t out_addr, int64_t out_stride,
                               int64_t out_offset, int threads) {
  if (F < 0 || N < 0 || C < 1 || H < 1 || W < 1) throw std::invalid_argument("corr_sample_cpu: bad sizes");
  if (radius < 0 || radius > kMaxRadius) throw std::invalid_argument("corr_sample_cpu: radius must be in [0, 15]");
  const int64_t d = 2 * radius + 1, e = d + 1;
  if (out_offset < 0 || out_offset + d * d > out_stride)
    throw std::invalid_argument("corr_sample_cpu: the level's values do not fit in out_stride");
  const float* fmap = reinterpret_cast<const float*>(fmap_addr);
  const float* feats = reinterpret_cast<const float*>(feats_addr);
  const float* coords = reinterpret_cast<const float*>(coords_addr);
  float* out = reinterpret_cast<float*>(out_addr);
  const float inv_scale = static_cast<float>(coord_scale);
  const float sqrt_c = std::sqrt(static_cast<float>(C));
  const float nan = std::numeric_limits<float>::quiet_NaN();

  parallel_ranges(F * N, threads, [&](int64_t begin, int64_t end, int) {
    std::vector<float> dots(e * e);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t f = item / N;
      const float* feat = feats + item * C;
      float* o = out + item * out_stride + out_offset;
      const float cx = coords[2 * item] * inv_scale, cy = coords[2 * item + 1] * inv_scale;
      if (!std::isfinite(cx) || !std::isfinite(cy)) {
        for (int64_t k = 0; k < d * d; ++k) o[k] = nan;
        continue;
      }
      // Far-away points see only zeros; clamping keeps the integer cell arithmetic in range.
      const float lim = 1e7f;
      const float x0f = std::floor(std::fmin(std::fmax(cx, -lim), lim));
      const float y0f = std::floor(std::fmin(std::fmax(cy, -lim), lim));
      const float fx = cx - x0f, fy = cy - y0f;
      const int64_t xs = static_cast<int64_t>(x0f) - radius, ys = static_cast<int64_t>(y0f) - radius;
      // the cells inside the map: columns [jx0, jx1) and rows [jy0, jy1) of the e x e block
      const int64_t jx0 = std::max<int64_t>(0, -xs), jx1 = std::min<int64_t>(e, W - xs);
      const int64_t jy0 = std::max<int64_t>(0, -ys), jy1 = std::min<int64_t>(e, H - ys);
      std::fill(dots.begin(), dots.end(), 0.f);
      const float* frame = fmap + f * sf;
      if (jx0 < jx1) {
        for (int64_t jy = jy0; jy < jy1; ++jy) {
          float* drow = dots.data() + jy * e;
          const float* cell_row = frame + (ys + jy) * sh + (xs + jx0) * sw;
          if (sc == 1) {
            for (int64_t jx = jx0; jx < jx1; ++jx) drow[jx] = dot_contiguous(cell_row + (jx - jx0) * sw, feat, C);
          } else {
            for (int64_t c = 0; c < C; ++c) axpy_row(drow + jx0, cell_row + c * sc, sw, feat[c], jx1 - jx0);
          }
        }
      }
      for (float& v : dots) v /= sqrt_c;
      // rows[iy][jx] blends cell rows iy and iy+1; values blend columns ix and ix+1 of that (x-major output)
      for (int64_t iy = 0; iy < d; ++iy) {
        const float* r0 = dots.data() + iy * e;
        const float* r1 = r0 + e;
        float prev = (1 - fy) * r0[0] + fy * r1[0];
        for (int64_t ix = 0; ix < d; ++ix) {
          const float next = (1 - fy) * r0[ix + 1] + fy * r1[ix + 1];
          o[ix * d + iy] = (1 - fx) * prev + fx * next;
          prev = next;
        }
      }
    }
  });
}

}  // namespace cotracker_fast_cpu
