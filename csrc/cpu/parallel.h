// Splitting a loop over [0, n) into contiguous ranges run on std::threads (the calling thread takes the first).
//
// The CPU kernels take their thread count from Python (torch.get_num_threads()) and spawn plain threads per call:
// the calls they serve last milliseconds, a thread start costs tens of microseconds, and no OpenMP runtime has to be
// shared with torch's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace cotracker_fast_cpu {

// fn(begin, end, thread_index) over contiguous ranges of [0, n); at most `threads` ranges, none empty.
template <typename Fn>
void parallel_ranges(int64_t n, int threads, Fn&& fn) {
  if (n <= 0) return;
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  if (t == 1) {
    fn(int64_t{0}, n, 0);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  const int64_t chunk = (n + t - 1) / t;
  for (int64_t i = 1; i < t; ++i) {
    const int64_t b = i * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([&fn, b, e, i] { fn(b, e, static_cast<int>(i)); });
  }
  fn(int64_t{0}, std::min(n, chunk), 0);
  for (auto& th : pool) th.join();
}

}  // namespace cotracker_fast_cpu
