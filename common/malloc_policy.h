// KeepFreedMemoryForReuse: the glibc malloc policy of processes that move
// megabytes per call (a shard's Sample answers, a sampler's batches, gRPC's
// buffers for them): memory freed after one call stays in the heap for the
// next instead of going back to the kernel to be faulted in and zeroed again
// (which cost the sampling path a third of its throughput). The heap then
// stays at its peak, which the call sizes bound. Call once, first in main.
#ifndef SOFTQ_COMMON_MALLOC_POLICY_H_
#define SOFTQ_COMMON_MALLOC_POLICY_H_

namespace softq {

void KeepFreedMemoryForReuse();

}  // namespace softq

#endif  // SOFTQ_COMMON_MALLOC_POLICY_H_
