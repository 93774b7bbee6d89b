#include "bench/op_census.h"

#include <memory>
#include <vector>

#include <ATen/record_function.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace softq {
namespace {

// Operations that only make views or allocate, and autograd's wrappers: no kernel of their
// own (one they call, as reshape may call clone, counts).
bool IsViewOrAllocation(absl::string_view name) {
  static const auto* const kNames = new absl::flat_hash_set<absl::string_view>{
      "aten::view",       "aten::_reshape_alias", "aten::reshape",     "aten::expand",
      "aten::slice",      "aten::select",         "aten::unsqueeze",   "aten::squeeze",
      "aten::transpose",  "aten::t",              "aten::as_strided",  "aten::narrow",
      "aten::detach",     "aten::alias",          "aten::permute",     "aten::empty",
      "aten::empty_like", "aten::empty_strided",  "aten::resize_",     "aten::set_",
      "aten::_unsafe_view", "aten::lift_fresh",   "aten::contiguous",  "aten::split",
      "aten::unbind",     "aten::numpy_T",        "aten::expand_as",   "aten::view_as",
      "aten::_has_compatible_shallow_copy_type",  "aten::is_nonzero",  "aten::flatten",
      "aten::squeeze_",   "aten::unsqueeze_",     "aten::detach_",     "aten::result_type",
  };
  return kNames->contains(name) || name == "detach" ||
         // Autograd's wrapper around each backward function: the work is inside.
         absl::StartsWith(name, "autograd::engine::evaluate_function:");
}

// This thread's census: how many of its open operations count, and the counts.
struct ThreadCensus {
  std::vector<bool> open_counted;  // per open operation: whether it counts
  int64_t open_counting = 0;       // how many of them count
  std::map<std::string, int64_t> counts;
  int64_t total = 0;
};

thread_local ThreadCensus census;

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
  const bool counts = census.open_counting == 0 && !IsViewOrAllocation(fn.name());
  census.open_counted.push_back(counts);
  if (counts) {
    ++census.open_counting;
    ++census.counts[fn.name()];
    ++census.total;
  }
  return nullptr;
}

void OnEnd(const at::RecordFunction&, at::ObserverContext*) {
  if (census.open_counted.empty()) return;  // began before the census
  if (census.open_counted.back()) --census.open_counting;
  census.open_counted.pop_back();
}

}  // namespace

OpCensus::OpCensus() {
  census = ThreadCensus{};
  handle_ = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&OnStart, &OnEnd).scopes({at::RecordScope::FUNCTION}));
}

OpCensus::~OpCensus() { at::removeCallback(handle_); }

int64_t OpCensus::total() const { return census.total; }

std::map<std::string, int64_t> OpCensus::by_name() const { return census.counts; }

}  // namespace softq
