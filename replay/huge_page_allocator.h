// std::allocator replacement for the table's big flat arrays: allocations of 2
// MiB or more are mmap'ed and marked MADV_HUGEPAGE, so random sampling over a
// large table takes far fewer TLB misses (Debian's default
// transparent-huge-page mode is "madvise"). Smaller ones go to operator new.
// Allocation failure returns nullptr-free behaviour of std::allocator: it
// throws std::bad_alloc, which the table avoids by checking sizes first.
// Stateless and thread-safe.
#ifndef SOFTQ_REPLAY_HUGE_PAGE_ALLOCATOR_H_
#define SOFTQ_REPLAY_HUGE_PAGE_ALLOCATOR_H_

#include <sys/mman.h>

#include <cstddef>
#include <new>

namespace softq {

template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kThreshold = size_t{32} << 20;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {
  }  // NOLINT: allocator rebinding

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kThreshold) return static_cast<T*>(::operator new(bytes));
    void* p = ::mmap(nullptr, Rounded(bytes), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    ::madvise(p, Rounded(bytes), MADV_HUGEPAGE);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kThreshold) {
      ::operator delete(p);
    } else {
      ::munmap(p, Rounded(bytes));
    }
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
