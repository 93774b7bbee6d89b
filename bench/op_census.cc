#include "bench/op_census.h"

#include <ATen/record_function.h>

#include <memory>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace softq {
namespace {

// Operations that only make views or allocate, and autograd's wrappers: no
// kernel of their own (one they call, as reshape may call clone, counts).
bool IsViewOrAllocation(absl::string_view name) {
  static const auto* const kNames = new absl::flat_hash_set<absl::string_view>{
      "aten::view",
      "aten::_reshape_alias",
      "aten::reshape",
      "aten::expand",
      "aten::slice",
      "aten::select",
      "aten::unsqueeze",
      "aten::squeeze",
      "aten::transpose",
      "aten::t",
      "aten::as_strided",
      "aten::narrow",
      "aten::detach",
      "aten::alias",
      "aten::permute",
      "aten::empty",
      "aten::empty_like",
      "aten::empty_strided",
      "aten::resize_",
      "aten::set_",
      "aten::_unsafe_view",
      "aten::lift_fresh",
      "aten::contiguous",
      "aten::split",
      "aten::unbind",
      "aten::numpy_T",
      "aten::expand_as",
      "aten::view_as",
      "aten::_has_compatible_shallow_copy_type",
      "aten::is_nonzero",
      "aten::flatten",
      "aten::squeeze_",
      "aten::unsqueeze_",
      "aten::detach_",
      "aten::result_type",
  };
  return kNames->contains(name) || name == "detach" ||
         // Autograd's wrapper around each backward function: the work is
         // inside.
         absl::StartsWith(name, "autograd::engine::evaluate_function:");
}

// The counts, shared by every thread (autograd runs a GPU's backward pass on
// its own thread, which inherits the thread-local callback).
struct Counts {
  absl::Mutex mu;
  std::map<std::string, int64_t> by_name ABSL_GUARDED_BY(mu);
  int64_t total ABSL_GUARDED_BY(mu) = 0;
};

Counts& SharedCounts() {
  static Counts* const counts = new Counts;
  return *counts;
}

// Per thread: whether each open operation counts, and how many of them do.
struct OpenOperations {
  std::vector<bool> counted;
  int64_t counting = 0;
};

thread_local OpenOperations open_operations;

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
  OpenOperations& open = open_operations;
  const bool counts = open.counting == 0 && !IsViewOrAllocation(fn.name());
  open.counted.push_back(counts);
  if (counts) {
    ++open.counting;
    Counts& shared = SharedCounts();
    absl::MutexLock lock(&shared.mu);
    ++shared.by_name[fn.name()];
    ++shared.total;
  }
  return nullptr;
}

void OnEnd(const at::RecordFunction&, at::ObserverContext*) {
  OpenOperations& open = open_operations;
  if (open.counted.empty()) return;  // began before the census
  if (open.counted.back()) --open.counting;
  open.counted.pop_back();
}

}  // namespace

OpCensus::OpCensus() {
  Counts& shared = SharedCounts();
  absl::MutexLock lock(&shared.mu);
  shared.by_name.clear();
  shared.total = 0;
  handle_ =
      at::addThreadLocalCallback(at::RecordFunctionCallback(&OnStart, &OnEnd)
                                     .scopes({at::RecordScope::FUNCTION}));
}

OpCensus::~OpCensus() { at::removeCallback(handle_); }

int64_t OpCensus::total() const {
  Counts& shared = SharedCounts();
  absl::MutexLock lock(&shared.mu);
  return shared.total;
}

std::map<std::string, int64_t> OpCensus::by_name() const {
  Counts& shared = SharedCounts();
  absl::MutexLock lock(&shared.mu);
  return shared.by_name;
}

}  // namespace softq
