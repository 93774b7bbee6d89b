#include "common/malloc_policy.h"

#include <malloc.h>

namespace softq {

void KeepFreedMemoryForReuse() {
  // Blocks below 256 MiB come from the heap (glibc's default maps each block
  // of 128 KiB or more on its own and unmaps it on free), the heap is not
  // trimmed below 1 GiB of free space at its top, and grows 64 MiB at a time.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace softq
