// SampleAssembler: builds a round of sampled batches from the shards' Sample
// answers in their packed_rows form (proto/replay.proto), decoding each
// answer's wire bytes straight into the rows of its batches: a run of rows is
// one copy, no SampleResponse message. Fields are expected as protobuf's
// serializer and the shard (replay/packed_sample.h) write them: the dimensions
// before the rows, repeated fields packed, once each. The shard validated
// every value when it was inserted (the trust boundary); here only shapes are
// checked: dimensions, and one value per row in every field.
// Thread-compatible.
#ifndef SOFTQ_REPLAY_SAMPLE_DECODER_H_
#define SOFTQ_REPLAY_SAMPLE_DECODER_H_

#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "replay/sampled_batch.h"

namespace softq {

// `count` consecutive rows of one answer go to rows first_row ..
// first_row + count - 1 of batch `batch`.
struct RowRun {
  int batch = 0;
  int first_row = 0;
  int count = 0;
};

class SampleAssembler {
 public:
  // `batches` batches of `batch_size` rows each (both >= 1).
  SampleAssembler(int batches, int batch_size);

  // Decodes one answer whose rows, in order, fill `runs` (which must stay
  // within the batches); each row gets `shard_index` and the probability
  // shard_probability * its probability in the answer. Sets *table_size to
  // the answer's. InternalError naming the field when the answer is not
  // shaped as asked (a row count or a dimension out of range, a field
  // missing); FailedPrecondition when its dimensions differ from those of an
  // earlier answer. After an error the batches are not to be used.
  absl::Status Add(grpc::ByteBuffer* answer, absl::Span<const RowRun> runs,
                   int shard_index, double shard_probability,
                   uint64_t* table_size);

  // The batches, each with `total_size`; episode and step ids are kept only
  // in batches whose every row came with them. REQUIRES: every row of every
  // batch was filled by a successful Add.
  std::vector<SampledBatch> Finish(uint64_t total_size) &&;

 private:
  const int batch_size_;
  std::vector<SampledBatch> batches_;
  std::vector<int> rows_with_ids_;  // per batch
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_SAMPLE_DECODER_H_
