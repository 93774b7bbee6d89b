// PackedSampleBuilder: a shard's Sample answer in its packed_rows form (a
// serialized proto::SampleResponse, proto/replay.proto), written straight into
// one buffer: the keys, probabilities, table size and dimensions at
// construction, then the rows and ids by the caller, in place (Table::ReadRows)
// — no SampleResponse message and no copy of the rows but that one.
// Thread-compatible.
#ifndef SOFTQ_REPLAY_PACKED_SAMPLE_H_
#define SOFTQ_REPLAY_PACKED_SAMPLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/types/span.h"

namespace softq {

// A serialized SampleResponse.
struct PackedSample {
  std::unique_ptr<char[]> bytes;
  size_t size = 0;
};

class PackedSampleBuilder {
 public:
  // An answer of keys.size() rows (== probabilities.size()); fields in number
  // order, as protobuf's serializer writes them. `ids`: it carries episode
  // and step ids.
  PackedSampleBuilder(absl::Span<const uint64_t> keys,
                      absl::Span<const double> probabilities,
                      uint64_t table_size, uint32_t observation_dim,
                      uint32_t action_dim, bool ids);

  // Where the rows (RowLayout width floats each), episode ids (8 bytes each)
  // and step ids (4 bytes each) go; the ids' are nullptr without `ids`. Every
  // byte must be written before Finish.
  char* rows() const { return rows_; }
  char* episode_ids() const { return episode_ids_; }
  char* step_ids() const { return step_ids_; }

  PackedSample Finish() && { return std::move(answer_); }

 private:
  PackedSample answer_;
  char* rows_ = nullptr;
  char* episode_ids_ = nullptr;
  char* step_ids_ = nullptr;
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_PACKED_SAMPLE_H_
