#include "replay/sample_decoder.h"

#include <google/protobuf/io/coded_stream.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/transition_check.h"

// Packed floats and doubles are copied as they are on the wire: little-endian.
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

// Field numbers of proto/replay.proto's SampleResponse and
// proto/transition.proto's TransitionBatch.
enum : uint32_t { kBatch = 1, kKeys = 2, kProbabilities = 3, kTableSize = 4 };
enum : uint32_t {
  kObservationDim = 1,
  kActionDim = 2,
  kObservations = 3,
  kActions = 4,
  kRewards = 5,
  kNextObservations = 6,
  kDones = 7,
  kEpisodeIds = 9,
  kStepIds = 10,
};

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
    bool batch = false, keys = false, probabilities = false;
    while (const uint32_t tag = in_->ReadTag()) {
      switch (tag) {
        case Tag(kBatch, kLength): {
          if (batch) return Bad("batch appears twice");
          uint32_t length = 0;
          if (!in_->ReadVarint32(&length)) return Bad("batch is cut short");
          const CodedInputStream::Limit limit =
              in_->PushLimit(static_cast<int>(length));
          if (absl::Status s = DecodeBatch(); !s.ok()) return s;
          in_->PopLimit(limit);
          batch = true;
          break;
        }
        case Tag(kKeys, kLength): {
          if (keys) return Bad("keys appears twice");
          if (absl::Status s =
                  Varints("keys", [](SampledBatch& b, int row,
                                     uint64_t v) { b.keys[row] = v; });
              !s.ok()) {
            return s;
          }
          keys = true;
          break;
        }
        case Tag(kProbabilities, kLength): {
          if (probabilities) return Bad("probabilities appears twice");
          uint32_t length = 0;
          if (!in_->ReadVarint32(&length) ||
              length != static_cast<uint64_t>(rows_) * 8) {
            return Bad(absl::StrCat("probabilities holds ", length / 8,
                                    " values, expected ", rows_));
          }
          for (const RowRun& run : runs_) {
            double* p =
                batches_[run.batch].probabilities.data() + run.first_row;
            if (!ReadChunks(in_, 8, run.count, &scratch_, [&](const char* c) {
                  double value;
                  std::memcpy(&value, c, sizeof(value));
                  *p++ = shard_probability * value;
                })) {
              return Bad("probabilities is cut short");
            }
          }
          probabilities = true;
          break;
        }
        case Tag(kTableSize, kVarint):
          if (!in_->ReadVarint64(table_size)) return Bad("table_size");
          break;
        default:
          if (!SkipField(in_, tag)) {
            return Bad(absl::StrCat("field ", tag >> 3, " is malformed"));
          }
      }
    }
    if (!in_->ConsumedEntireMessage()) return Bad("malformed bytes");
    if (!batch) return Bad("batch is missing");
    if (!keys)
      return Bad(absl::StrCat("keys is missing, ", rows_, " expected"));
    if (!probabilities) {
      return Bad(
          absl::StrCat("probabilities is missing, ", rows_, " expected"));
    }
    return absl::OkStatus();
  }

 private:
  // The TransitionBatch, within its length limit.
  absl::Status DecodeBatch() {
    uint32_t seen = 0;  // bit per field number
    while (const uint32_t tag = in_->ReadTag()) {
      const uint32_t field = tag >> 3;
      if (field >= kObservations && field <= kStepIds && field != 8) {
        if ((tag & 7) != kLength) {
          return Bad(absl::StrCat("batch field ", field, " is not packed"));
        }
        if (seen & (1u << field)) {
          return Bad(absl::StrCat("batch field ", field, " appears twice"));
        }
        if (absl::Status s = Prepare(); !s.ok()) return s;
      }
      absl::Status s;
      switch (tag) {
        case Tag(kObservationDim, kVarint):
          if (!in_->ReadVarint32(&observation_dim_)) return Bad("dimensions");
          break;
        case Tag(kActionDim, kVarint):
          if (!in_->ReadVarint32(&action_dim_)) return Bad("dimensions");
          break;
        case Tag(kObservations, kLength):
          s = Floats("observations", 0, observation_dim_);
          break;
        case Tag(kActions, kLength):
          s = Floats("actions", Layout().action(), action_dim_);
          break;
        case Tag(kRewards, kLength):
          s = Floats("rewards", Layout().reward(), 1);
          break;
        case Tag(kNextObservations, kLength):
          s = Floats("next_observations", Layout().next_observation(),
                     observation_dim_);
          break;
        case Tag(kDones, kLength):
          s = Dones();
          break;
        case Tag(kEpisodeIds, kLength):
          s = Varints("batch.episode_ids",
                      [](SampledBatch& b, int row, uint64_t v) {
                        if (b.episode_ids.empty())
                          b.episode_ids.resize(b.keys.size());
                        b.episode_ids[row] = v;
                      });
          break;
        case Tag(kStepIds, kLength):
          s = Varints("batch.step_ids",
                      [](SampledBatch& b, int row, uint64_t v) {
                        if (b.step_ids.empty())
                          b.step_ids.resize(b.keys.size());
                        b.step_ids[row] = static_cast<uint32_t>(v);
                      });
          break;
        default:
          if (!SkipField(in_, tag)) {
            return Bad(absl::StrCat("batch field ", field, " is malformed"));
          }
      }
      if (!s.ok()) return s;
      if (field < 32) seen |= 1u << field;
    }
    if (!in_->ConsumedEntireMessage()) return Bad("malformed batch");
    if (absl::Status s = Prepare(); !s.ok()) return s;  // dimensions checked
    struct Required {
      uint32_t field;
      const char* name;
    };
    for (const Required& r :
         {Required{kObservations, "observations"},
          Required{kActions, "actions"}, Required{kRewards, "rewards"},
          Required{kNextObservations, "next_observations"},
          Required{kDones, "dones"}}) {
      if (!(seen & (1u << r.field))) {
        return Bad(absl::StrCat("batch.", r.name, " is missing, ", rows_,
                                " rows expected"));
      }
    }
    const bool episode_ids = seen & (1u << kEpisodeIds);
    const bool step_ids = seen & (1u << kStepIds);
    if (episode_ids != step_ids) {
      return Bad("batch.episode_ids and batch.step_ids: one without the other");
    }
    if (episode_ids) {
      for (const RowRun& run : runs_) rows_with_ids_[run.batch] += run.count;
    }
    return absl::OkStatus();
  }

  // Checks the dimensions once, and gives each batch the answer's rows its
  // first answer's dimensions; FailedPrecondition when they differ.
  absl::Status Prepare() {
    if (prepared_) return absl::OkStatus();
    if (observation_dim_ < 1 || observation_dim_ > kMaxObservationDim) {
      return Bad(absl::StrCat("batch.observation_dim is ", observation_dim_,
                              ", expected 1..", kMaxObservationDim,
                              " before the batch's values"));
    }
    if (action_dim_ < 1 || action_dim_ > kMaxActionDim) {
      return Bad(absl::StrCat("batch.action_dim is ", action_dim_,
                              ", expected 1..", kMaxActionDim,
                              " before the batch's values"));
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

  // A packed float field of `per_row` floats per row, into columns
  // [column, column + per_row) of each row.
  absl::Status Floats(const char* name, uint32_t column, uint32_t per_row) {
    uint32_t length = 0;
    const uint64_t expected = static_cast<uint64_t>(rows_) * per_row * 4;
    if (!in_->ReadVarint32(&length) || length != expected) {
      return Bad(absl::StrCat("batch.", name, " holds ", length / 4,
                              " floats, expected ", rows_, " rows x ",
                              per_row));
    }
    const int bytes = static_cast<int>(per_row * 4);
    for (const RowRun& run : runs_) {
      SampledBatch& b = batches_[run.batch];
      const int64_t width = b.width();
      float* to = b.rows.data() + run.first_row * width + column;
      if (!ReadChunks(in_, bytes, run.count, &scratch_, [&](const char* c) {
            CopyField(to, c, bytes);
            to += width;
          })) {
        return Bad(absl::StrCat("batch.", name, " is cut short"));
      }
    }
    return absl::OkStatus();
  }

  // Packed bools, one byte each as protobuf writes them, into the last column.
  absl::Status Dones() {
    uint32_t length = 0;
    if (!in_->ReadVarint32(&length) || length != static_cast<uint32_t>(rows_)) {
      return Bad(absl::StrCat("batch.dones holds ", length,
                              " bytes, expected one per row, ", rows_));
    }
    for (const RowRun& run : runs_) {
      SampledBatch& b = batches_[run.batch];
      const int64_t width = b.width();
      float* to = b.rows.data() + run.first_row * width + b.layout().done();
      if (!ReadChunks(in_, 1, run.count, &scratch_, [&](const char* c) {
            *to = *c != 0 ? 1.0f : 0.0f;
            to += width;
          })) {
        return Bad("batch.dones is cut short");
      }
    }
    return absl::OkStatus();
  }

  // A packed varint field with one value per row, each handed to `set`.
  template <typename Set>
  absl::Status Varints(const char* name, Set set) {
    uint32_t length = 0;
    if (!in_->ReadVarint32(&length))
      return Bad(absl::StrCat(name, " is cut short"));
    const CodedInputStream::Limit limit =
        in_->PushLimit(static_cast<int>(length));
    for (const RowRun& run : runs_) {
      SampledBatch& b = batches_[run.batch];
      for (int k = 0; k < run.count; ++k) {
        uint64_t v = 0;
        if (!in_->ReadVarint64(&v)) {
          return Bad(
              absl::StrCat(name, " holds fewer than ", rows_, " values"));
        }
        set(b, run.first_row + k, v);
      }
    }
    if (in_->BytesUntilLimit() != 0) {
      return Bad(absl::StrCat(name, " holds more than ", rows_, " values"));
    }
    in_->PopLimit(limit);
    return absl::OkStatus();
  }

  CodedInputStream* const in_;
  const absl::Span<const RowRun> runs_;
  const int batch_size_;
  std::vector<SampledBatch>& batches_;
  std::vector<int>& rows_with_ids_;
  int rows_ = 0;
  RowLayout Layout() const { return RowLayout(observation_dim_, action_dim_); }
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
