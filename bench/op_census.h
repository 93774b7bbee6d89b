// OpCensus: counts the tensor operations that do work (on a GPU, each is at least one kernel
// launch) run on the constructing thread while the census is alive, by name. The outermost
// operation that does work counts, not those it calls (linear counts, not the addmm inside),
// and pure views and allocations do not count (view, expand, slice, empty, ...) though work
// inside them does (reshape's copy).
// Autograd's backward operations on the CPU run on the calling thread and count too. For
// benchmarks only: a thread-local LibTorch RecordFunction callback. Not thread-safe; one
// census per thread at a time.
#ifndef SOFTQ_BENCH_OP_CENSUS_H_
#define SOFTQ_BENCH_OP_CENSUS_H_

#include <cstdint>
#include <map>
#include <string>

namespace softq {

class OpCensus {
 public:
  OpCensus();
  ~OpCensus();
  OpCensus(const OpCensus&) = delete;
  OpCensus& operator=(const OpCensus&) = delete;

  // Operations counted so far, in total and by name ("aten::addmm" -> 6).
  int64_t total() const;
  std::map<std::string, int64_t> by_name() const;

 private:
  uint64_t handle_;
};

}  // namespace softq

#endif  // SOFTQ_BENCH_OP_CENSUS_H_
