#include "replay/sample_decoder.h"

#include <google/protobuf/io/coded_stream.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/row_layout.h"
#include "common/transition_check.h"

// Rows, probabilities and ids are copied as they are on the wire:
// little-endian.
#ifndef ABSL_IS_LITTLE_ENDIAN
#error "replay/sample_decoder.cc assumes a little-endian host"
#endif

namespace softq {
namespace {

using google::protobuf::io::CodedInputStream;

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLength = 2,
  kFixed32 = 5,
};
constexpr uint32_t Tag(uint32_t field, WireType type) {
  return field << 3 | type;
}

// Field numbers of proto/replay.proto's SampleResponse (packed_rows form).
enum : uint32_t {
  kKeys = 2,
  kProbabilities = 3,
  kTableSize = 4,
  kObservationDim = 5,
  kActionDim = 6,
  kRows = 7,
  kEpisodeIds = 8,
  kStepIds = 9,
};

// The fields that come length-delimited, once each.
constexpr uint32_t kLengthFields = 1u << kKeys | 1u << kProbabilities |
                                   1u << kRows | 1u << kEpisodeIds |
                                   1u << kStepIds;

absl::Status Bad(absl::string_view what) {
  return absl::InternalError(absl::StrCat("Sample answer: ", what));
}

// Skips a field this decoder does not read.
bool SkipField(CodedInputStream* in, uint32_t tag) {
  switch (tag & 7) {
    case kVarint: {
      uint64_t v = 0;
      return in->ReadVarint64(&v);
    }
    case kFixed64:
      return in->Skip(8);
    case kLength: {
      uint32_t n = 0;
      return in->ReadVarint32(&n) && in->Skip(static_cast<int>(n));
    }
    case kFixed32:
      return in->Skip(4);
    default:
      return false;
  }
}

// Hands `rows` consecutive chunks of `bytes` bytes of the stream to
// `take(const char*)` in order, straight from the stream's buffers (a chunk
// cut by a buffer boundary through `scratch`). False when the stream ends.
template <typename Take>
bool ReadChunks(CodedInputStream* in, int bytes, int rows, std::string* scratch,
                Take take) {
  while (rows > 0) {
    const void* data = nullptr;
    int size = 0;
    if (!in->GetDirectBufferPointer(&data, &size)) return false;
    const int fit = std::min(rows, size / bytes);
    if (fit == 0) {
      scratch->resize(bytes);
      if (!in->ReadRaw(scratch->data(), bytes)) return false;
      take(scratch->data());
      --rows;
      continue;
    }
    const char* p = static_cast<const char*>(data);
    for (int k = 0; k < fit; ++k) take(p + k * bytes);
    if (!in->Skip(fit * bytes)) return false;
    rows -= fit;
  }
  return true;
}

// The decoding of one answer into the assembler's batches.
class AnswerDecoder {
 public:
  AnswerDecoder(CodedInputStream* in, absl::Span<const RowRun> runs,
                int batch_size, std::vector<SampledBatch>* batches,
                std::vector<int>* rows_with_ids)
      : in_(in),
        runs_(runs),
        batch_size_(batch_size),
        batches_(*batches),
        rows_with_ids_(*rows_with_ids) {
    for (const RowRun& run : runs_) rows_ += run.count;
  }

  absl::Status Decode(double shard_probability, uint64_t* table_size) {
    uint32_t seen = 0;  // bit per field number
    while (const uint32_t tag = in_->ReadTag()) {
      const uint32_t field = tag >> 3;
      if (field < 32 && (kLengthFields >> field & 1)) {
        if ((tag & 7) != kLength) {
          return Bad(absl::StrCat("field ", field, " is not packed"));
        }
        if (seen & (1u << field)) {
          return Bad(absl::StrCat("field ", field, " appears twice"));
        }
      }
      if (field == kRows || field == kEpisodeIds || field == kStepIds) {
        if (absl::Status s = Prepare(); !s.ok()) return s;
      }
      absl::Status s;
      switch (tag) {
        case Tag(kKeys, kLength):
          s = Keys();
          break;
        case Tag(kProbabilities, kLength):
          s = Fixed("probabilities", 8,
                    [&](SampledBatch& b, int row, const char* c) {
                      double value;
                      std::memcpy(&value, c, sizeof(value));
                      b.probabilities[row] = shard_probability * value;
                    });
          break;
        case Tag(kTableSize, kVarint):
          if (!in_->ReadVarint64(table_size)) return Bad("table_size");
          break;
        case Tag(kObservationDim, kVarint):
          if (!in_->ReadVarint32(&observation_dim_)) return Bad("dimensions");
          break;
        case Tag(kActionDim, kVarint):
          if (!in_->ReadVarint32(&action_dim_)) return Bad("dimensions");
          break;
        case Tag(kRows, kLength):
          s = Rows();
          break;
        case Tag(kEpisodeIds, kLength):
          s = Fixed("episode_ids", 8,
                    [](SampledBatch& b, int row, const char* c) {
                      if (b.episode_ids.empty())
                        b.episode_ids.resize(b.keys.size());
                      std::memcpy(&b.episode_ids[row], c, 8);
                    });
          break;
        case Tag(kStepIds, kLength):
          s = Fixed("step_ids", 4, [](SampledBatch& b, int row, const char* c) {
            if (b.step_ids.empty()) b.step_ids.resize(b.keys.size());
            std::memcpy(&b.step_ids[row], c, 4);
          });
          break;
        default:
          if (!SkipField(in_, tag)) {
            return Bad(absl::StrCat("field ", field, " is malformed"));
          }
      }
      if (!s.ok()) return s;
      if (field < 32) seen |= 1u << field;
    }
    if (!in_->ConsumedEntireMessage()) return Bad("malformed bytes");
    struct Required {
      uint32_t field;
      const char* name;
    };
    for (const Required& r : {Required{kRows, "rows"}, Required{kKeys, "keys"},
                              Required{kProbabilities, "probabilities"}}) {
      if (!(seen & (1u << r.field))) {
        return Bad(
            absl::StrCat(r.name, " is missing, ", rows_, " rows expected"));
      }
    }
    const bool episode_ids = seen & (1u << kEpisodeIds);
    const bool step_ids = seen & (1u << kStepIds);
    if (episode_ids != step_ids) {
      return Bad("episode_ids and step_ids: one without the other");
    }
    if (episode_ids) {
      for (const RowRun& run : runs_) rows_with_ids_[run.batch] += run.count;
    }
    return absl::OkStatus();
  }

 private:
  // Checks the dimensions once, and gives each batch the answer's rows its
  // first answer's dimensions; FailedPrecondition when they differ.
  absl::Status Prepare() {
    if (prepared_) return absl::OkStatus();
    if (observation_dim_ < 1 || observation_dim_ > kMaxObservationDim) {
      return Bad(absl::StrCat("observation_dim is ", observation_dim_,
                              ", expected 1..", kMaxObservationDim,
                              " before the rows"));
    }
    if (action_dim_ < 1 || action_dim_ > kMaxActionDim) {
      return Bad(absl::StrCat("action_dim is ", action_dim_, ", expected 1..",
                              kMaxActionDim, " before the rows"));
    }
    for (const RowRun& run : runs_) {
      SampledBatch& b = batches_[run.batch];
      if (b.observation_dim == 0) {
        b.observation_dim = observation_dim_;
        b.action_dim = action_dim_;
        b.rows.resize(static_cast<size_t>(batch_size_) * b.width());
      } else if (b.observation_dim != observation_dim_ ||
                 b.action_dim != action_dim_) {
        return absl::FailedPreconditionError(absl::StrCat(
            "shards hold different dimensions: observation_dim ",
            observation_dim_, " and action_dim ", action_dim_, " here, ",
            b.observation_dim, " and ", b.action_dim, " in another answer"));
      }
    }
    prepared_ = true;
    return absl::OkStatus();
  }

  // The rows, a run's straight into its batch's rows: one copy per run (and
  // per buffer gRPC delivered it in).
  absl::Status Rows() {
    const uint64_t row_bytes =
        RowLayout(observation_dim_, action_dim_).width() * sizeof(float);
    uint32_t length = 0;
    if (!in_->ReadVarint32(&length) ||
        length != static_cast<uint64_t>(rows_) * row_bytes) {
      return Bad(absl::StrCat("rows holds ", length, " bytes, expected ", rows_,
                              " rows x ", row_bytes));
    }
    for (const RowRun& run : runs_) {
      SampledBatch& b = batches_[run.batch];
      if (!in_->ReadRaw(b.rows.data() + run.first_row * b.width(),
                        static_cast<int>(run.count * row_bytes))) {
        return Bad("rows is cut short");
      }
    }
    return absl::OkStatus();
  }

  // The packed keys, one varint per row.
  absl::Status Keys() {
    uint32_t length = 0;
    if (!in_->ReadVarint32(&length)) return Bad("keys is cut short");
    const CodedInputStream::Limit limit =
        in_->PushLimit(static_cast<int>(length));
    for (const RowRun& run : runs_) {
      uint64_t* key = batches_[run.batch].keys.data() + run.first_row;
      for (int k = 0; k < run.count; ++k) {
        if (!in_->ReadVarint64(key + k)) {
          return Bad(absl::StrCat("keys holds fewer than ", rows_, " values"));
        }
      }
    }
    if (in_->BytesUntilLimit() != 0) {
      return Bad(absl::StrCat("keys holds more than ", rows_, " values"));
    }
    in_->PopLimit(limit);
    return absl::OkStatus();
  }

  // A packed fixed-width field of `bytes` per value, one value per row, each
  // handed to `set(batch, row, bytes)`.
  template <typename Set>
  absl::Status Fixed(const char* name, int bytes, Set set) {
    uint32_t length = 0;
    if (!in_->ReadVarint32(&length) ||
        length != static_cast<uint64_t>(rows_) * bytes) {
      return Bad(absl::StrCat(name, " holds ", length / bytes,
                              " values, expected ", rows_));
    }
    for (const RowRun& run : runs_) {
      SampledBatch& b = batches_[run.batch];
      int row = run.first_row;
      if (!ReadChunks(in_, bytes, run.count, &scratch_,
                      [&](const char* c) { set(b, row++, c); })) {
        return Bad(absl::StrCat(name, " is cut short"));
      }
    }
    return absl::OkStatus();
  }

  CodedInputStream* const in_;
  const absl::Span<const RowRun> runs_;
  const int batch_size_;
  std::vector<SampledBatch>& batches_;
  std::vector<int>& rows_with_ids_;
  int rows_ = 0;
  uint32_t observation_dim_ = 0, action_dim_ = 0;
  bool prepared_ = false;
  std::string scratch_;  // a value cut by a buffer boundary
};

}  // namespace

SampleAssembler::SampleAssembler(int batches, int batch_size)
    : batch_size_(batch_size), batches_(batches), rows_with_ids_(batches, 0) {
  for (SampledBatch& b : batches_) {
    b.keys.resize(batch_size);
    b.shard_index.resize(batch_size);
    b.probabilities.resize(batch_size);
  }
}

absl::Status SampleAssembler::Add(grpc::ByteBuffer* answer,
                                  absl::Span<const RowRun> runs,
                                  int shard_index, double shard_probability,
                                  uint64_t* table_size) {
  for (const RowRun& run : runs) {
    int* s = batches_[run.batch].shard_index.data() + run.first_row;
    std::fill(s, s + run.count, shard_index);
  }
  grpc::ProtoBufferReader reader(answer);
  if (!reader.status().ok()) return Bad("unreadable bytes");
  CodedInputStream in(&reader);
  return AnswerDecoder(&in, runs, batch_size_, &batches_, &rows_with_ids_)
      .Decode(shard_probability, table_size);
}

std::vector<SampledBatch> SampleAssembler::Finish(uint64_t total_size) && {
  for (size_t b = 0; b < batches_.size(); ++b) {
    SampledBatch& batch = batches_[b];
    batch.total_size = total_size;
    if (rows_with_ids_[b] != batch_size_) {
      batch.episode_ids.clear();
      batch.step_ids.clear();
    }
  }
  return std::move(batches_);
}

}  // namespace softq
