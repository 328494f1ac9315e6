// CUDA kernels for the UpdateFormer's factorised attention (no torch headers; see attention.h).
//
// time_attention_fwd_kernel: the time blocks attend over the S = 8..16 frames of each track. One warp handles one
//   (batch, head) sequence: K and V go to shared memory, lane i owns query i and runs an online softmax over the
//   L <= 32 keys in registers, and writes its output row. Head dims 32 / 48 / 64 are template parameters, so a 48-wide head costs 48 lanes of
//   work, not 64.
// group_attention_fwd_kernel: the space blocks attend over the N tracks of each frame (N up to 65,536). Flash-style:
//   a block owns BM query rows (one per thread), streams BN-key tiles of K and V through shared memory and keeps a
//   running max / sum (online softmax); an optional key mask drops padding tracks. SIMT maths in fp32 (no tensor
//   cores yet).
// All I/O in fp32 / fp16 / bf16; softmax and accumulation in fp32. Scores are (q . k) * scale as in the reference.
#include "attention.cuh"
#include "attention.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace cotracker_fast {
namespace {

constexpr int kMaxTimeLen = 32;  // one lane per query
constexpr int kWarp = 32;

// Online softmax, one key at a time: running max m, running sum l, accumulator acc (all fp32).
template <int D>
__device__ __forceinline__ void online_update(const float* q, const float* k, const float* v, float scale, float& m,
                                              float& l, float* acc) {
  float dot = 0.f;
#pragma unroll
  for (int d = 0; d < D; ++d) dot += q[d] * k[d];
  const float s = dot * scale;
  if (s > m) {  // new maximum: rescale what was accumulated (exp(-inf) = 0 on the first key)
    const float alpha = __expf(m - s);
    l *= alpha;
#pragma unroll
    for (int d = 0; d < D; ++d) acc[d] *= alpha;
    m = s;
  }
  const float p = __expf(s - m);
  l += p;
#pragma unroll
  for (int d = 0; d < D; ++d) acc[d] += p * v[d];
}

template <typename T, int D>
__global__ void time_attention_fwd_kernel(const T* __restrict__ qkv, T* __restrict__ out, long long batch, int L,
                                          int heads, long long sb, long long sl, long long s3, long long sh,
                                          float scale) {
  extern __shared__ float smem[];
  const int warp_in_block = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const long long seq = (long long)blockIdx.x * (blockDim.x / kWarp) + warp_in_block;
  if (seq >= batch * heads) return;
  const long long b = seq / heads;
  const int h = (int)(seq % heads);
  float* ks = smem + (size_t)warp_in_block * 2 * L * D;
  float* vs = ks + (size_t)L * D;
  const T* base = qkv + b * sb + h * sh;
  for (int idx = lane; idx < L * D; idx += kWarp) {
    const int l = idx / D, d = idx % D;
    ks[idx] = to_float(base[l * sl + s3 + d]);
    vs[idx] = to_float(base[l * sl + 2 * s3 + d]);
  }
  __syncwarp();
  if (lane >= L) return;
  float q[D], acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) {
    q[d] = to_float(base[lane * sl + d]);
    acc[d] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < L; ++j) online_update<D>(q, ks + j * D, vs + j * D, scale, m, l, acc);
  const float inv = 1.f / l;
  T* o = out + (b * L + lane) * (long long)(heads * D) + h * D;
#pragma unroll
  for (int d = 0; d < D; ++d) o[d] = from_float<T>(acc[d] * inv);
}

template <typename T, int D, int BM, int BN>
__global__ void group_attention_fwd_kernel(const T* __restrict__ qkv, const unsigned char* __restrict__ key_mask,
                                           T* __restrict__ out, int L, int heads, long long sb, long long sl,
                                           long long s3, long long sh, long long mask_sb, float scale) {
  __shared__ float ks[BN * D];
  __shared__ float vs[BN * D];
  __shared__ bool valid[BN];
  const long long bh = blockIdx.x;  // batch * heads on x (up to 2^31 - 1), row tiles on y (at most 1024)
  const long long b = bh / heads;
  const int h = (int)(bh % heads);
  const int row = blockIdx.y * BM + threadIdx.x;
  const T* base = qkv + b * sb + h * sh;
  float q[D], acc[D];
  float m = -INFINITY, l = 0.f;
#pragma unroll
  for (int d = 0; d < D; ++d) {
    q[d] = row < L ? to_float(base[(long long)row * sl + d]) : 0.f;
    acc[d] = 0.f;
  }
  for (int k0 = 0; k0 < L; k0 += BN) {
    for (int idx = threadIdx.x; idx < BN * D; idx += BM) {
      const int j = idx / D, d = idx % D, k = k0 + j;
      const bool in = k < L;
      ks[idx] = in ? to_float(base[(long long)k * sl + s3 + d]) : 0.f;
      vs[idx] = in ? to_float(base[(long long)k * sl + 2 * s3 + d]) : 0.f;
    }
    for (int j = threadIdx.x; j < BN; j += BM) {
      const int k = k0 + j;
      valid[j] = k < L && (key_mask == nullptr || key_mask[b * mask_sb + k] != 0);
    }
    __syncthreads();
    if (row < L) {
      for (int j = 0; j < BN; ++j)
        if (valid[j]) online_update<D>(q, ks + j * D, vs + j * D, scale, m, l, acc);
    }
    __syncthreads();
  }
  if (row < L) {
    T* o = out + (b * L + row) * (long long)(heads * D) + h * D;
    const float inv = 1.f / l;  // a row with no valid key gives NaN, as softmax over nothing does
#pragma unroll
    for (int d = 0; d < D; ++d) o[d] = from_float<T>(acc[d] * inv);
  }
}

void check_common(std::int64_t batch, std::int64_t L, std::int64_t heads, std::int64_t head_dim, int dtype,
                  std::uintptr_t qkv, std::uintptr_t out) {
  if (qkv == 0 || out == 0) throw std::invalid_argument("qkv and out must be device addresses (got a null pointer)");
  if (batch < 1 || L < 1 || heads < 1)
    throw std::invalid_argument("batch, L and heads must be >= 1, got " + std::to_string(batch) + ", " +
                                std::to_string(L) + ", " + std::to_string(heads));
  if (head_dim != 32 && head_dim != 48 && head_dim != 64)
    throw std::invalid_argument("head_dim must be 32, 48 or 64, got " + std::to_string(head_dim));
  if (dtype != kFloat32 && dtype != kFloat16 && dtype != kBFloat16)
    throw std::invalid_argument("dtype code must be 0 (float32), 1 (float16) or 2 (bfloat16), got " +
                                std::to_string(dtype));
  if (batch * heads > 2147483647LL) throw std::invalid_argument("batch * heads must be < 2^31");
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + " launch failed: " + cudaGetErrorString(err));
}

template <typename T, int D>
void launch_time(std::uintptr_t qkv, std::uintptr_t out, std::int64_t batch, std::int64_t L, std::int64_t heads,
                 std::int64_t sb, std::int64_t sl, std::int64_t s3, std::int64_t sh, float scale, cudaStream_t stream) {
  const int per_warp_bytes = (int)(2 * L * D * sizeof(float));
  const int warps = per_warp_bytes * 4 <= 48 * 1024 ? 4 : 2;  // stays within the default 48 KB of shared memory
  const long long seqs = batch * heads;
  const unsigned blocks = (unsigned)((seqs + warps - 1) / warps);
  time_attention_fwd_kernel<T, D><<<blocks, warps * kWarp, warps * per_warp_bytes, stream>>>(
      reinterpret_cast<const T*>(qkv), reinterpret_cast<T*>(out), batch, (int)L, (int)heads, sb, sl, s3, sh, scale);
  check_launch("time_attention_fwd_kernel");
}

template <typename T, int D>
void launch_group(std::uintptr_t qkv, std::uintptr_t mask, std::uintptr_t out, std::int64_t batch, std::int64_t L,
                  std::int64_t heads, std::int64_t sb, std::int64_t sl, std::int64_t s3, std::int64_t sh,
                  std::int64_t mask_sb, float scale, cudaStream_t stream) {
  constexpr int BM = 64, BN = 32;
  const dim3 grid((unsigned)(batch * heads), (unsigned)((L + BM - 1) / BM));
  group_attention_fwd_kernel<T, D, BM, BN><<<grid, BM, 0, stream>>>(
      reinterpret_cast<const T*>(qkv), reinterpret_cast<const unsigned char*>(mask), reinterpret_cast<T*>(out),
      (int)L, (int)heads, sb, sl, s3, sh, mask_sb, scale);
  check_launch("group_attention_fwd_kernel");
}

template <template <typename, int> class F, typename... Args>
void dispatch(int dtype, std::int64_t head_dim, Args... args) {
#define COTRACKER_FAST_HEAD(TYPE)                      \
  if (head_dim == 32) return F<TYPE, 32>::run(args...); \
  if (head_dim == 48) return F<TYPE, 48>::run(args...); \
  return F<TYPE, 64>::run(args...);
  if (dtype == kFloat32) { COTRACKER_FAST_HEAD(float) }
  if (dtype == kFloat16) { COTRACKER_FAST_HEAD(__half) }
  COTRACKER_FAST_HEAD(__nv_bfloat16)
#undef COTRACKER_FAST_HEAD
}

template <typename T, int D> struct TimeLauncher {
  template <typename... A> static void run(A... a) { launch_time<T, D>(a...); }
};
template <typename T, int D> struct GroupLauncher {
  template <typename... A> static void run(A... a) { launch_group<T, D>(a...); }
};

}  // namespace

void time_attention_fwd_cuda(std::uintptr_t qkv, std::uintptr_t out, std::int64_t batch, std::int64_t L,
                             std::int64_t heads, std::int64_t head_dim, std::int64_t sb, std::int64_t sl,
                             std::int64_t s3, std::int64_t sh, double scale, int dtype, std::uintptr_t stream) {
  check_common(batch, L, heads, head_dim, dtype, qkv, out);
  if (L > kMaxTimeLen)
    throw std::invalid_argument("time attention supports L <= 32, got L = " + std::to_string(L) +
                                " (use group attention)");
  dispatch<TimeLauncher>(dtype, head_dim, qkv, out, batch, L, heads, sb, sl, s3, sh, (float)scale,
                         reinterpret_cast<cudaStream_t>(stream));
}

void group_attention_fwd_cuda(std::uintptr_t qkv, std::uintptr_t key_mask, std::uintptr_t out, std::int64_t batch,
                              std::int64_t L, std::int64_t heads, std::int64_t head_dim, std::int64_t sb,
                              std::int64_t sl, std::int64_t s3, std::int64_t sh, std::int64_t mask_sb, double scale,
                              int dtype, std::uintptr_t stream) {
  check_common(batch, L, heads, head_dim, dtype, qkv, out);
  if (L > 65536) throw std::invalid_argument("group attention supports L <= 65536, got L = " + std::to_string(L));
  dispatch<GroupLauncher>(dtype, head_dim, qkv, key_mask, out, batch, L, heads, sb, sl, s3, sh, mask_sb,
                          (float)scale, reinterpret_cast<cudaStream_t>(stream));
}

}  // namespace cotracker_fast
