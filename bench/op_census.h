// OpCensus: counts the tensor operations that do work (on a GPU, each is at
// least one kernel launch) while the census is alive, by name: those started on
// the constructing thread and in its autograd backward passes (which a GPU runs
// on autograd's device thread; it inherits the census). The outermost operation
// that does work counts, not those it calls (linear counts, not the addmm
// inside); pure views and allocations (view, expand, slice, empty, ...) do not,
// though work inside them does (reshape's copy). A thread-local LibTorch
// RecordFunction callback, for benchmarks. One census at a time in a process;
// its accessors are thread-safe.
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
