// bfloat16 multi-head attention on CPUs with AVX512-BF16 (see attention_cpu.h).
//
// Flash-style: for each (batch, head) the keys and values are packed once into the pair layout of VDPBF16PS
// (two bf16 values per 32-bit lane), then groups of four query rows stream over blocks of keys. Per block: the
// scores of the four rows (dot products of bf16 pairs accumulated in fp32), the online-softmax update (running
// maximum and sum in fp32, exponentials by a polynomial), and the probability-weighted values, again with VDPBF16PS.
// No L x L matrix is ever stored. The functions that use AVX512 carry target attributes, so the library loads on
// any x86-64 CPU; Python calls them only where attention_bf16_supported() says so.
#include "attention_cpu.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "parallel.h"

#define CTF_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))

namespace cotracker_fast_cpu {
namespace {

constexpr int kRows = 4;           // query rows per group
constexpr int64_t kRowChunk = 64;  // query rows per work item

inline uint32_t pair(uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); }

// 2^x for x <= 0 (float32, about 2e-7 relative error); exactly 0 below 2^-126 (masked keys carry x = -inf).
CTF_AVX512_BF16 inline __m512 exp2_nonpositive(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.f), _CMP_GE_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-126.f));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 t = _mm512_mul_ps(_mm512_sub_ps(x, n), _mm512_set1_ps(0.69314718f));  // |t| <= ln(2) / 2
  // e^t by its Taylor polynomial of degree 6 (remainder below 1.2e-7 for |t| <= 0.347)
  __m512 p = _mm512_set1_ps(1.f / 720);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.f / 120));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.f / 24));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.f / 6));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.f));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

CTF_AVX512_BF16 inline __m512 dot_pairs(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

// Keys and values of one (batch, head), packed for VDPBF16PS; Lp = L rounded up to the key block.
struct Packed {
  std::vector<uint32_t> k;  // (D/2, Lp): k[dp*Lp + j] = (K[j][2dp], K[j][2dp+1])
  std::vector<uint32_t> v;  // (Lp/2, D): v[jp*D + d] = (V[2jp][d], V[2jp+1][d])
  std::vector<float> bias;  // (Lp): 0 for a valid key, -inf for a masked or padding one
  int64_t Lp = 0;
};

struct Problem {
  const uint16_t* qkv;
  const uint8_t* mask;
  uint16_t* out;
  int64_t Bt, L, H, D, sb, sl, s3, sh, mask_sb;
  float scale_log2;  // softmax scale times log2(e): the softmax runs in base 2
};

void pack(const Problem& P, int64_t b, int64_t h, int64_t block, Packed& pk) {
  const int64_t L = P.L, D = P.D;
  pk.Lp = (L + block - 1) / block * block;
  pk.k.assign(D / 2 * pk.Lp, 0u);
  pk.v.assign(pk.Lp / 2 * D, 0u);
  pk.bias.assign(pk.Lp, -std::numeric_limits<float>::infinity());
  const uint16_t* base = P.qkv + b * P.sb + h * P.sh;
  for (int64_t j = 0; j < L; ++j) {
    const uint16_t* kj = base + j * P.sl + P.s3;
    const uint16_t* vj = base + j * P.sl + 2 * P.s3;
    for (int64_t dp = 0; dp < D / 2; ++dp) pk.k[dp * pk.Lp + j] = pair(kj[2 * dp], kj[2 * dp + 1]);
    uint16_t* vrow = reinterpret_cast<uint16_t*>(pk.v.data() + (j / 2) * D) + (j % 2);
    for (int64_t d = 0; d < D; ++d) vrow[2 * d] = vj[d];
    if (P.mask == nullptr || P.mask[b * P.mask_sb + j]) pk.bias[j] = 0.f;
  }
}

// Attention of query rows [i0, i1) of (b, h), kRows at a time; ND = D / 16 output vectors, KV key vectors per block.
template <int ND, int KV>
CTF_AVX512_BF16 void attend(const Problem& P, const Packed& pk, int64_t b, int64_t h, int64_t i0, int64_t i1) {
  constexpr int DP = ND * 8;  // bf16 pairs per head row
  constexpr int KB = 16 * KV;  // keys per block
  const __m512 scale2 = _mm512_set1_ps(P.scale_log2);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const uint16_t* qbase = P.qkv + b * P.sb + h * P.sh;
  for (int64_t r0 = i0; r0 < i1; r0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, i1 - r0));
    alignas(64) uint32_t qp[kRows][DP];
    std::memset(qp, 0, sizeof(qp));
    for (int r = 0; r < rows; ++r) std::memcpy(qp[r], qbase + (r0 + r) * P.sl, sizeof(uint32_t) * DP);
    float m[kRows];
    __m512 lsum[kRows], o[kRows][ND];
    for (int r = 0; r < kRows; ++r) {
      m[r] = neg_inf;
      lsum[r] = _mm512_setzero_ps();
      for (int n = 0; n < ND; ++n) o[r][n] = _mm512_setzero_ps();
    }
    for (int64_t kb = 0; kb < pk.Lp; kb += KB) {
      __m512 s[kRows][KV];
      for (int r = 0; r < kRows; ++r)
        for (int v = 0; v < KV; ++v) s[r][v] = _mm512_setzero_ps();
      for (int dp = 0; dp < DP; ++dp) {
        __m512i kv[KV];
        for (int v = 0; v < KV; ++v) kv[v] = _mm512_loadu_si512(pk.k.data() + dp * pk.Lp + kb + 16 * v);
        for (int r = 0; r < kRows; ++r) {
          const __m512i qb = _mm512_set1_epi32(static_cast<int>(qp[r][dp]));
          for (int v = 0; v < KV; ++v) s[r][v] = dot_pairs(s[r][v], qb, kv[v]);
        }
      }
      alignas(64) uint16_t pb[kRows][KB];
      for (int r = 0; r < kRows; ++r) {
        __m512 mx = _mm512_set1_ps(neg_inf);
        for (int v = 0; v < KV; ++v) {
          s[r][v] = _mm512_fmadd_ps(s[r][v], scale2, _mm512_loadu_ps(pk.bias.data() + kb + 16 * v));
          mx = _mm512_max_ps(mx, s[r][v]);
        }
        const float m_new = std::fmax(m[r], _mm512_reduce_max_ps(mx));
        if (m_new == neg_inf) {  // no valid key so far: nothing to add
          std::memset(pb[r], 0, sizeof(pb[r]));
          continue;
        }
        const __m512 corr = _mm512_set1_ps(std::exp2(m[r] - m_new));  // 0 when m[r] is -inf
        m[r] = m_new;
        lsum[r] = _mm512_mul_ps(lsum[r], corr);
        for (int n = 0; n < ND; ++n) o[r][n] = _mm512_mul_ps(o[r][n], corr);
        const __m512 mv = _mm512_set1_ps(m_new);
        for (int v = 0; v < KV; ++v) {
          const __m512 p = exp2_nonpositive(_mm512_sub_ps(s[r][v], mv));
          lsum[r] = _mm512_add_ps(lsum[r], p);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(pb[r] + 16 * v), (__m256i)_mm512_cvtneps_pbh(p));
        }
      }
      const uint32_t* vblock = pk.v.data() + (kb / 2) * P.D;
      for (int jp = 0; jp < KB / 2; ++jp) {
        __m512i vv[ND];
        for (int n = 0; n < ND; ++n) vv[n] = _mm512_loadu_si512(vblock + jp * P.D + 16 * n);
        for (int r = 0; r < kRows; ++r) {
          uint32_t pp;
          std::memcpy(&pp, pb[r] + 2 * jp, sizeof(pp));
          const __m512i pbc = _mm512_set1_epi32(static_cast<int>(pp));
          for (int n = 0; n < ND; ++n) o[r][n] = dot_pairs(o[r][n], pbc, vv[n]);
        }
      }
    }
    for (int r = 0; r < rows; ++r) {
      const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(lsum[r]));
      uint16_t* orow = P.out + (b * P.L + r0 + r) * (P.H * P.D) + h * P.D;
      for (int n = 0; n < ND; ++n)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(orow + 16 * n),
                            (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(o[r][n], inv)));
    }
  }
}

template <int ND>
void run(const Problem& P, int threads) {
  const bool long_keys = P.L > 32;  // 64-key blocks for long sequences, 16-key blocks for the short time blocks
  const int64_t block = long_keys ? 64 : 16;
  const int64_t chunks = (P.L + kRowChunk - 1) / kRowChunk;
  parallel_ranges(P.Bt * P.H * chunks, threads, [&](int64_t begin, int64_t end, int) {
    Packed pk;
    int64_t packed_bh = -1;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bh = item / chunks, chunk = item % chunks;
      const int64_t b = bh / P.H, h = bh % P.H;
      if (bh != packed_bh) {
        pack(P, b, h, block, pk);
        packed_bh = bh;
      }
      const int64_t i0 = chunk * kRowChunk, i1 = std::min(P.L, i0 + kRowChunk);
      if (long_keys)
        attend<ND, 4>(P, pk, b, h, i0, i1);
      else
        attend<ND, 1>(P, pk, b, h, i0, i1);
    }
  });
}

}  // namespace

bool attention_bf16_supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bf16");
}

void attention_bf16_fwd_cpu(uintptr_t qkv, uintptr_t mask, uintptr_t out, int64_t Bt, int64_t L, int64_t H, int64_t D,
                            int64_t sb, int64_t sl, int64_t s3, int64_t sh, int64_t mask_sb, double scale,
                            int threads) {
  if (Bt < 0 || L < 1 || H < 1) throw std::invalid_argument("attention_bf16_cpu: bad sizes");
  if (D != 32 && D != 48 && D != 64) throw std::invalid_argument("attention_bf16_cpu: head_dim must be 32, 48 or 64");
  if (!attention_bf16_supported()) throw std::runtime_error("attention_bf16_cpu: this CPU lacks AVX512-BF16");
  const Problem P{reinterpret_cast<const uint16_t*>(qkv), reinterpret_cast<const uint8_t*>(mask),
                  reinterpret_cast<uint16_t*>(out), Bt, L, H, D, sb, sl, s3, sh, mask_sb,
                  static_cast<float>(scale * 1.4426950408889634)};
  if (D == 32) run<2>(P, threads);
  else if (D == 48) run<3>(P, threads);
  else run<4>(P, threads);
}

}  // namespace cotracker_fast_cpu
