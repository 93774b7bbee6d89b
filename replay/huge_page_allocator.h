// std::allocator replacement for the table's big flat arrays: allocations of 4
// MiB or more are mmap'ed and marked MADV_HUGEPAGE, so random sampling over a
// table larger than the TLB's reach takes far fewer TLB misses (Debian's
// default transparent-huge-page mode is "madvise"; the 32 MB table of 1e6
// multi-goal rows is such a table). Smaller ones are calloc'ed.
// New storage is always zero and default construction writes nothing, so
// resize() of an empty vector leaves the kernel's zero pages untouched: a big
// table commits memory as it fills, not all at once when it is created.
// Allocation failure throws std::bad_alloc, as std::allocator does; the table
// avoids it by checking sizes first. Stateless and thread-safe.
#ifndef SOFTQ_REPLAY_HUGE_PAGE_ALLOCATOR_H_
#define SOFTQ_REPLAY_HUGE_PAGE_ALLOCATOR_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace softq {

template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kThreshold = size_t{4} << 20;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {
  }  // NOLINT: allocator rebinding

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kThreshold) {
      void* p = std::calloc(n, sizeof(T));
      if (p == nullptr) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
    void* p = ::mmap(nullptr, Rounded(bytes), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    ::madvise(p, Rounded(bytes), MADV_HUGEPAGE);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kThreshold) {
      std::free(p);
    } else {
      ::munmap(p, Rounded(bytes));
    }
  }
  // Default construction leaves the (zeroed) storage as it is; anything else as
  // std::allocator does.
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const {
    return false;
  }

 private:
  static size_t Rounded(size_t bytes) {
    return (bytes + kHugePage - 1) / kHugePage * kHugePage;
  }
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_HUGE_PAGE_ALLOCATOR_H_
