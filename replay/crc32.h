// CRC-32 (the IEEE 802.3 / zlib polynomial, reflected), for checkpoint
// checksums without an extra library. Pure functions, thread-safe.
#ifndef SOFTQ_REPLAY_CRC32_H_
#define SOFTQ_REPLAY_CRC32_H_

#include <cstddef>
#include <cstdint>

namespace softq {

// Extends `crc` (0 for a fresh checksum) over `n` bytes: Crc32(Crc32(0,a),b) ==
// Crc32(0,ab). Crc32(0, "123456789", 9) == 0xCBF43926.
uint32_t Crc32(uint32_t crc, const void* data, size_t n);

// CRC-32C (Castagnoli polynomial, reflected), the same contract as Crc32. Uses
// the SSE4.2 crc32 instruction when the CPU has it (about 8x faster than
// Crc32's tables), else tables. Crc32c(0, "123456789", 9) == 0xE3069283.
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);

}  // namespace softq

#endif  // SOFTQ_REPLAY_CRC32_H_
