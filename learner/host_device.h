// SOFTQ_HOST_DEVICE marks the functions that learner/kernel_launch.cu runs on
// the GPU and the tests run on the CPU (stein_block.h, soft_td_block.h):
// __host__ __device__ under nvcc, nothing for a plain C++ compiler.
#ifndef SOFTQ_LEARNER_HOST_DEVICE_H_
#define SOFTQ_LEARNER_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define SOFTQ_HOST_DEVICE __host__ __device__
#else
#define SOFTQ_HOST_DEVICE
#endif

#endif  // SOFTQ_LEARNER_HOST_DEVICE_H_
