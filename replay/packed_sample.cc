#include "replay/packed_sample.h"

#include <cstring>
#include <utility>

#include "absl/base/config.h"
#include "common/row_layout.h"

// Fixed-width values are written as they lie in memory: little-endian.
#ifndef ABSL_IS_LITTLE_ENDIAN
#error "replay/packed_sample.cc assumes a little-endian host"
#endif

namespace softq {
namespace {

// Field numbers of proto/replay.proto's SampleResponse, with their wire types
// (0: varint, 2: length-delimited).
constexpr uint8_t kKeysTag = 2 << 3 | 2;
constexpr uint8_t kProbabilitiesTag = 3 << 3 | 2;
constexpr uint8_t kTableSizeTag = 4 << 3 | 0;
constexpr uint8_t kObservationDimTag = 5 << 3 | 0;
constexpr uint8_t kActionDimTag = 6 << 3 | 0;
constexpr uint8_t kRowsTag = 7 << 3 | 2;
constexpr uint8_t kEpisodeIdsTag = 8 << 3 | 2;
constexpr uint8_t kStepIdsTag = 9 << 3 | 2;

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

char* PutVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

// A length-delimited field's tag and length: its size, and the field's.
size_t LengthFieldSize(uint64_t length) {
  return 1 + VarintSize(length) + length;
}

char* PutLength(char* p, uint8_t tag, uint64_t length) {
  *p++ = static_cast<char>(tag);
  return PutVarint(p, length);
}

}  // namespace

PackedSampleBuilder::PackedSampleBuilder(absl::Span<const uint64_t> keys,
                                         absl::Span<const double> probabilities,
                                         uint64_t table_size,
                                         uint32_t observation_dim,
                                         uint32_t action_dim, bool ids) {
  const uint64_t n = keys.size();
  uint64_t keys_length = 0;
  for (uint64_t k : keys) keys_length += VarintSize(k);
  const uint64_t rows_length =
      n * RowLayout(observation_dim, action_dim).width() * sizeof(float);
  size_t size = LengthFieldSize(keys_length) + LengthFieldSize(n * 8) + 1 +
                VarintSize(table_size) + 1 + VarintSize(observation_dim) + 1 +
                VarintSize(action_dim) + LengthFieldSize(rows_length);
  if (ids) size += LengthFieldSize(n * 8) + LengthFieldSize(n * 4);
  // Left uninitialized: every byte is written here or by the caller.
  answer_.bytes.reset(new char[size]);
  answer_.size = size;
  char* p = answer_.bytes.get();
  p = PutLength(p, kKeysTag, keys_length);
  for (uint64_t k : keys) p = PutVarint(p, k);
  p = PutLength(p, kProbabilitiesTag, n * 8);
  std::memcpy(p, probabilities.data(), n * 8);
  p += n * 8;
  *p++ = kTableSizeTag;
  p = PutVarint(p, table_size);
  *p++ = kObservationDimTag;
  p = PutVarint(p, observation_dim);
  *p++ = kActionDimTag;
  p = PutVarint(p, action_dim);
  p = PutLength(p, kRowsTag, rows_length);
  rows_ = p;
  p += rows_length;
  if (ids) {
    p = PutLength(p, kEpisodeIdsTag, n * 8);
    episode_ids_ = p;
    p += n * 8;
    p = PutLength(p, kStepIdsTag, n * 4);
    step_ids_ = p;
  }
}

}  // namespace softq
