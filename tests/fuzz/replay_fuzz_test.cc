// Seeded random-mutation fuzzing of a real replay shard (the gRPC service and
// its Shard, in this process, over a loopback port), of checkpoint loading and
// of restarting from the insert log.
//
// Why not libFuzzer: Bazel 4.2.3 has no fuzzing rules and the project's
// toolchain is gcc; a clang toolchain with -fsanitize=fuzzer linked against
// Debian's gcc-built gRPC/Abseil/Protobuf is not worth the friction. These
// tests mutate valid seeds (bytes of the serialized message, then parsed; and
// field-level edits with boundary values) with a seeded std::mt19937_64, run
// under --config=asan like every other test, and print the seed and the number
// of executions. Inputs that do not parse are a test of protobuf, not of the
// shard, and are skipped (counted).
//
// Budget: SOFTQ_FUZZ_SECONDS per target (default 4) or SOFTQ_FUZZ_ITERATIONS
// (exact count, overrides the time budget); SOFTQ_FUZZ_SEED (default 1). A
// longer run:
//   bazel test //tests/fuzz:replay_fuzz_test --test_env=SOFTQ_FUZZ_SECONDS=300
//     --test_timeout=3600 [--config=asan]
//
// Every input must end in an OK or error status (never a crash, hang or a
// broken stream), and after every target the store is consistent: the stats'
// size equals what was acknowledged, and items with the known keys still hold
// the known data.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/row_layout.h"
#include "proto/replay.grpc.pb.h"
#include "replay/checkpoint.h"
#include "replay/crc32.h"
#include "replay/insert_log.h"
#include "replay/service.h"
#include "replay/shard.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

constexpr uint32_t kObs = 3, kAct = 2;
constexpr int kKnown = 64;  // transitions with ids 0..63, inserted first
constexpr uint64_t kCapacity = 200000;

using testing::CheckedId;
using testing::ReadFile;
using testing::WriteFile;

// Transitions whose every value encodes their id
// (tests/replay/server_fixture.h), with this file's dimensions.
proto::TransitionBatch MakeBatch(int n, int first_id, uint32_t actor_id) {
  return testing::MakeBatch(n, first_id, kObs, kAct, actor_id);
}

std::string TempDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/softq_fuzz_XXXXXX");
  return ::mkdtemp(dir.data()) != nullptr ? dir : "/tmp";
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// Time or iteration budget of one target.
class Budget {
 public:
  Budget()
      : iterations_(EnvOr("SOFTQ_FUZZ_ITERATIONS", 0)),
        end_(absl::Now() + absl::Seconds(EnvOr("SOFTQ_FUZZ_SECONDS", 4))) {}
  // True while the budget lasts.
  bool More() {
    if (iterations_ > 0) return done_++ < iterations_;
    return absl::Now() < end_;
  }

 private:
  const uint64_t iterations_;
  const absl::Time end_;
  uint64_t done_ = 0;
};

// Byte- and field-level mutations of serialized protobufs.
class Mutator {
 public:
  explicit Mutator(uint64_t seed) : gen_(seed) {}
  std::mt19937_64& gen() { return gen_; }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : gen_() % n; }
  bool Chance(int percent) {
    return Below(100) < static_cast<uint64_t>(percent);
  }

  // 1-4 byte edits: bit flip, random or boundary byte, insert, erase,
  // duplicate, truncate.
  void MutateBytes(std::string* s) {
    const int edits = 1 + Below(4);
    for (int e = 0; e < edits; ++e) {
      const size_t n = s->size();
      switch (Below(7)) {
        case 0:
          if (n) (*s)[Below(n)] ^= static_cast<char>(1 << Below(8));
          break;
        case 1:
          if (n) (*s)[Below(n)] = static_cast<char>(gen_());
          break;
        case 2: {
          static const char kBoundary[] = {0, 1, 0x7f, '\x80', '\xff', '\xfe'};
          if (n) (*s)[Below(n)] = kBoundary[Below(sizeof(kBoundary))];
          break;
        }
        case 3: {
          std::string ins(1 + Below(8), '\0');
          for (char& c : ins) c = static_cast<char>(gen_());
          s->insert(Below(n + 1), ins);
          break;
        }
        case 4:
          if (n) s->erase(Below(n), 1 + Below(16));
          break;
        case 5:
          if (n) {
            const size_t at = Below(n);
            s->insert(Below(n + 1), s->substr(at, 1 + Below(32)));
          }
          break;
        case 6:
          s->resize(Below(n + 1));
          break;
      }
    }
  }

  float Float() {
    static const float kValues[] = {0.0f,
                                    -0.0f,
                                    1.0f,
                                    -1.0f,
                                    1e38f,
                                    -1e38f,
                                    1e-45f,
                                    std::numeric_limits<float>::quiet_NaN(),
                                    std::numeric_limits<float>::infinity(),
                                    -std::numeric_limits<float>::infinity()};
    return Chance(50) ? kValues[Below(10)]
                      : std::uniform_real_distribution<float>(-10, 10)(gen_);
  }
  uint64_t Integer() {
    static const uint64_t kValues[] = {
        0,     1,        2,          3,          255,     4096,    4097,
        65535, 1u << 31, UINT32_MAX, UINT64_MAX, 1000000, 1000001, INT64_MAX};
    return Chance(70) ? kValues[Below(14)] : gen_();
  }

 private:
  std::mt19937_64 gen_;
};

// Field-level edits of a TransitionBatch: dimensions, array lengths, values.
void MutateBatch(Mutator& m, proto::TransitionBatch* b) {
  switch (m.Below(9)) {
    case 0:
      b->set_observation_dim(static_cast<uint32_t>(m.Integer()));
      break;
    case 1:
      b->set_action_dim(static_cast<uint32_t>(m.Integer()));
      break;
    case 2:
      if (b->observations_size())
        b->set_observations(m.Below(b->observations_size()), m.Float());
      break;
    case 3:
      if (b->rewards_size())
        b->set_rewards(m.Below(b->rewards_size()), m.Float());
      break;
    case 4:
      b->add_actions(m.Float());
      break;
    case 5:
      if (b->dones_size()) b->mutable_dones()->RemoveLast();
      break;
    case 6:
      b->set_actor_id(static_cast<uint32_t>(m.Integer()));
      break;
    case 7:
      b->add_episode_ids(m.Integer());
      if (m.Chance(50)) b->add_step_ids(static_cast<uint32_t>(m.Integer()));
      break;
    case 8:
      if (b->next_observations_size())
        b->mutable_next_observations()->Truncate(
            m.Below(b->next_observations_size()));
      break;
  }
}

// A shard behind an in-process gRPC server on 127.0.0.1.
class FuzzedShard : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = EnvOr("SOFTQ_FUZZ_SEED", 1);
    dir_ = TempDir();
    StartShard();
  }

  void TearDown() override { StopShard(); }

  // A fresh shard and server holding only the known data.
  void StartShard() {
    ShardOptions options;
    options.shard_id = "fuzz";
    options.capacity =
        kCapacity;  // the insert target moves on at half: no eviction
    options.sampler = "prioritized";
    options.observation_dim = kObs;
    options.action_dim = kAct;
    absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Create(options);
    ASSERT_TRUE(shard.ok()) << shard.status();
    shard_ = *std::move(shard);
    service_ = std::make_unique<ReplayService>(shard_.get(),
                                               CheckpointPath(dir_, "fuzz"));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.SetMaxReceiveMessageSize(4 << 20);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    stub_ = proto::ReplayShard::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    // The known data: ids 0..kKnown-1.
    proto::InsertRequest known;
    known.set_sequence(1);
    *known.mutable_batch() = MakeBatch(kKnown, 0, 7);
    proto::InsertResponse r;
    ASSERT_TRUE(InsertOnce(known, &r));
    ASSERT_EQ(r.code(), 0) << r.error();
    known_first_key_ = r.first_key();
    stored_ = kKnown;
    next_key_ = known_first_key_ + kKnown;
  }

  void StopShard() {
    if (server_ != nullptr) {
      shard_->Cancel();
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::seconds(2));
      server_.reset();
    }
  }

  // One request on its own stream; false when the stream broke.
  bool InsertOnce(const proto::InsertRequest& request,
                  proto::InsertResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    auto stream = stub_->Insert(&context);
    if (!stream->Write(request)) return false;
    stream->WritesDone();
    if (!stream->Read(response)) return false;
    return stream->Finish().ok();
  }

  grpc::Status Call(std::function<grpc::Status(grpc::ClientContext*)> rpc) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    return rpc(&context);
  }

  // The store is consistent: size == every acknowledged transition; sampled
  // items are well-formed; items with known keys hold the known data.
  void ExpectConsistent() {
    proto::ShardStats stats;
    ASSERT_TRUE(Call([&](grpc::ClientContext* c) {
                  return stub_->GetStats(c, proto::StatsRequest(), &stats);
                }).ok());
    EXPECT_EQ(stats.size(), stored_);
    EXPECT_EQ(stats.inserts_total(), stored_);
    EXPECT_EQ(stats.observation_dim(), kObs);
    EXPECT_EQ(stats.action_dim(), kAct);
    // Known data is findable: priority 1 for it, 1e-30 for everything else,
    // then draw.
    for (uint64_t from = known_first_key_; from < next_key_; from += 100000) {
      proto::UpdatePrioritiesRequest up;
      for (uint64_t k = from; k < std::min(next_key_, from + 100000); ++k) {
        up.add_keys(k);
        up.add_priorities(k < known_first_key_ + kKnown ? 1.0f : 1e-30f);
      }
      proto::UpdatePrioritiesResponse upr;
      const grpc::Status st = Call([&](grpc::ClientContext* c) {
        return stub_->UpdatePriorities(c, up, &upr);
      });
      ASSERT_TRUE(st.ok()) << st.error_message();
      EXPECT_EQ(upr.missing(), 0u);
    }
    proto::SampleRequest sr;
    sr.set_batch_size(512);
    proto::SampleResponse s;
    const grpc::Status st =
        Call([&](grpc::ClientContext* c) { return stub_->Sample(c, sr, &s); });
    ASSERT_TRUE(st.ok()) << st.error_message();
    const proto::TransitionBatch& b = s.batch();
    ASSERT_EQ(b.observation_dim(), kObs);
    ASSERT_EQ(s.keys_size(), 512);
    ASSERT_EQ(b.observations_size(), 512 * static_cast<int>(kObs));
    ASSERT_EQ(b.actions_size(), 512 * static_cast<int>(kAct));
    ASSERT_EQ(b.rewards_size(), 512);
    int known_seen = 0;
    for (int i = 0; i < 512; ++i) {
      EXPECT_LT(s.keys(i), known_first_key_ + stored_);
      if (s.keys(i) >= known_first_key_ &&
          s.keys(i) < known_first_key_ + kKnown) {
        ++known_seen;
        EXPECT_EQ(CheckedId(b, i),
                  static_cast<int>(s.keys(i) - known_first_key_));
      }
    }
    EXPECT_GT(known_seen, 400);
  }

  uint64_t seed_ = 1;
  std::string dir_;
  std::unique_ptr<Shard> shard_;
  std::unique_ptr<ReplayService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<proto::ReplayShard::Stub> stub_;
  uint64_t known_first_key_ = 0;
  uint64_t stored_ = 0;    // transitions acknowledged with code OK
  uint64_t next_key_ = 0;  // one past the largest key given out
};

TEST_F(FuzzedShard,
       InsertStreamAnswersEveryMutatedRequestAndStoresOnlyAcknowledgedData) {
  Mutator m(seed_);
  Budget budget;
  uint64_t executions = 0, unparsable = 0, accepted = 0, shards = 1;
  while (budget.More()) {
    if (stored_ >=
        kCapacity /
            2) {  // before anything is evicted: check, then a fresh shard
      ExpectConsistent();
      StopShard();
      StartShard();
      ++shards;
    }
    // One stream per round of up to 32 requests, sequences mostly increasing.
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    auto stream = stub_->Insert(&context);
    const int n = 1 + m.Below(32);
    uint64_t sequence = 1 + m.Below(3);
    int sent = 0;
    for (int i = 0; i < n; ++i) {
      proto::InsertRequest request;
      request.set_sequence(m.Chance(90) ? sequence++ : m.Integer());
      *request.mutable_batch() =
          MakeBatch(1 + m.Below(8), 1000 + m.Below(100000), m.Below(4));
      if (m.Chance(30)) {
        for (int k = 0; k < request.batch().rewards_size(); ++k) {
          request.add_priorities(m.Chance(90) ? 1.0f : m.Float());
        }
      }
      if (m.Chance(50)) MutateBatch(m, request.mutable_batch());
      if (m.Chance(50)) {
        std::string bytes = request.SerializeAsString();
        m.MutateBytes(&bytes);
        if (!request.ParseFromString(bytes)) {
          ++unparsable;
          continue;
        }
      }
      ASSERT_TRUE(stream->Write(request))
          << "stream broken by request " << request.ShortDebugString();
      ++sent;
      ++executions;
    }
    stream->WritesDone();
    proto::InsertResponse response;
    int answers = 0;
    while (stream->Read(&response)) {
      ++answers;
      if (response.code() == 0) {
        ++accepted;
        stored_ += response.count();
        next_key_ = std::max<uint64_t>(next_key_,
                                       response.first_key() + response.count());
      } else {
        EXPECT_FALSE(response.error().empty());
      }
    }
    const grpc::Status st = stream->Finish();
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(answers, sent);
  }
  std::cout << "InsertRequest: seed " << seed_ << ", " << executions
            << " executions, " << accepted << " accepted, " << unparsable
            << " unparsable skipped, " << shards << " shard(s) filled"
            << std::endl;
  ExpectConsistent();
}

TEST_F(FuzzedShard, SampleAnswersEveryMutatedRequestWithAStatus) {
  Mutator m(seed_ + 1);
  Budget budget;
  uint64_t executions = 0, ok = 0;
  proto::SampleRequest seed;
  seed.set_batch_size(16);
  seed.set_timeout_ms(0);
  while (budget.More()) {
    proto::SampleRequest request = seed;
    if (m.Chance(50))
      request.set_batch_size(static_cast<uint32_t>(m.Integer()));
    if (m.Chance(50)) request.set_timeout_ms(static_cast<int64_t>(m.Integer()));
    if (m.Chance(50)) {
      std::string bytes = request.SerializeAsString();
      m.MutateBytes(&bytes);
      if (!request.ParseFromString(bytes)) continue;
    }
    // A large wait is legal; bound it by the call's deadline instead.
    proto::SampleResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(500));
    const grpc::Status st = stub_->Sample(&context, request, &response);
    ++executions;
    if (st.ok()) {
      ++ok;
      ASSERT_GE(request.batch_size(), 1u);
      ASSERT_EQ(response.keys_size(), static_cast<int>(request.batch_size()));
      if (request.packed_rows()) {
        ASSERT_EQ(response.rows().size(), uint64_t{request.batch_size()} *
                                              RowLayout(kObs, kAct).width() *
                                              sizeof(float));
      } else {
        ASSERT_EQ(response.batch().rewards_size(),
                  static_cast<int>(request.batch_size()));
      }
      for (double p : response.probabilities())
        ASSERT_TRUE(p > 0 && p <= 1) << p;
    } else {
      ASSERT_NE(st.error_code(), grpc::StatusCode::INTERNAL)
          << st.error_message();
      ASSERT_NE(st.error_code(), grpc::StatusCode::UNKNOWN)
          << st.error_message();
    }
  }
  std::cout << "SampleRequest: seed " << seed_ + 1 << ", " << executions
            << " executions, " << ok << " ok" << std::endl;
  ExpectConsistent();
}

TEST_F(FuzzedShard, UpdatePrioritiesAnswersEveryMutatedRequestWithAStatus) {
  Mutator m(seed_ + 2);
  Budget budget;
  uint64_t executions = 0, ok = 0;
  while (budget.More()) {
    proto::UpdatePrioritiesRequest request;
    const int n = m.Below(64);
    for (int i = 0; i < n; ++i) {
      request.add_keys(m.Chance(80) ? known_first_key_ + m.Below(next_key_ + 2)
                                    : m.Integer());
      request.add_priorities(m.Chance(80) ? 0.5f + m.Below(100) : m.Float());
    }
    if (m.Chance(20) && n) request.mutable_keys()->RemoveLast();
    if (m.Chance(50)) {
      std::string bytes = request.SerializeAsString();
      m.MutateBytes(&bytes);
      if (!request.ParseFromString(bytes)) continue;
    }
    proto::UpdatePrioritiesResponse response;
    const grpc::Status st = Call([&](grpc::ClientContext* c) {
      return stub_->UpdatePriorities(c, request, &response);
    });
    ++executions;
    if (st.ok()) {
      ++ok;
      ASSERT_EQ(response.updated() + response.missing(),
                static_cast<uint32_t>(request.keys_size()));
    } else {
      ASSERT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << st.error_message();
    }
  }
  std::cout << "UpdatePrioritiesRequest: seed " << seed_ + 2 << ", "
            << executions << " executions, " << ok << " ok" << std::endl;
  ExpectConsistent();
}

TEST_F(FuzzedShard,
       CheckpointAnswersMutatedRequestsAndMutatedFilesAreRefusedCleanly) {
  Mutator m(seed_ + 3);
  Budget budget;
  // The Checkpoint RPC: its request has no fields; mutations add unknown ones.
  uint64_t rpc_executions = 0;
  for (int i = 0; i < 20; ++i) {
    std::string bytes;
    m.MutateBytes(&bytes);
    proto::CheckpointRequest request;
    if (!request.ParseFromString(bytes)) continue;
    proto::CheckpointResponse response;
    const grpc::Status st = Call([&](grpc::ClientContext* c) {
      return stub_->Checkpoint(c, request, &response);
    });
    ++rpc_executions;
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(response.items(), stored_);
  }
  // Prioritized, with episode ids: every optional section of the format is
  // present.
  {
    grpc::ClientContext context;
    auto stream = stub_->Insert(&context);
    proto::InsertRequest r;
    r.set_sequence(1);
    *r.mutable_batch() = MakeBatch(5, 500, 9);
    for (int i = 0; i < 5; ++i) {
      r.mutable_batch()->add_episode_ids(3);
      r.mutable_batch()->add_step_ids(i);
    }
    ASSERT_TRUE(stream->Write(r));
    stream->WritesDone();
    proto::InsertResponse a;
    ASSERT_TRUE(stream->Read(&a));
    ASSERT_EQ(a.code(), 0) << a.error();
    stored_ += a.count();
    next_key_ = a.first_key() + a.count();
    ASSERT_TRUE(stream->Finish().ok());
  }
  proto::CheckpointResponse written;
  ASSERT_TRUE(Call([&](grpc::ClientContext* c) {
                return stub_->Checkpoint(c, proto::CheckpointRequest(),
                                         &written);
              }).ok());
  const std::string good = testing::ReadFile(written.path());
  ASSERT_GT(good.size(), 64u);

  const std::string path = absl::StrCat(dir_, "/mutated.ckpt");
  uint64_t executions = 0, refused = 0, restored = 0;
  while (budget.More()) {
    std::string file = good;
    const int kind = m.Below(3);
    if (kind == 0) {
      m.MutateBytes(&file);  // CRC almost surely wrong
    } else {
      // Header/body edits with the CRC recomputed: the reader's own checks must
      // catch what the CRC no longer does.
      const size_t header = std::min<size_t>(file.size() - 4, 80);
      for (int e = 0, n = 1 + m.Below(3); e < n; ++e) {
        const size_t at =
            kind == 1 ? m.Below(header) : m.Below(file.size() - 4);
        file[at] = m.Chance(50) ? static_cast<char>(m.gen()()) : '\xff';
      }
      if (m.Chance(20)) file.resize(4 + m.Below(file.size() - 4));
      if (file.size() >= 4) {
        const uint32_t crc = Crc32(0, file.data(), file.size() - 4);
        std::memcpy(&file[file.size() - 4], &crc, 4);
      }
    }
    testing::WriteFile(path, file);
    ShardOptions options = shard_->options();
    absl::StatusOr<std::unique_ptr<Shard>> s = Shard::Restore(options, path);
    ++executions;
    if (s.ok()) {
      ++restored;
      // Whatever was accepted is a working shard.
      const Table& table = (*s)->table();
      ASSERT_LE(table.size(), options.capacity);
      proto::SampleResponse out;
      if (table.size() > 0) {
        const absl::Status st = (*s)->Sample(
            4, absl::Now() + absl::Milliseconds(10), nullptr, &out);
        ASSERT_TRUE(st.ok() || absl::IsDeadlineExceeded(st)) << st;
      }
    } else {
      ++refused;
      ASSERT_TRUE(absl::IsDataLoss(s.status()) ||
                  absl::IsInvalidArgument(s.status()))
          << s.status();
    }
  }
  std::cout << "Checkpoint: seed " << seed_ + 3 << ", " << rpc_executions
            << " RPC executions, " << executions << " mutated files ("
            << refused << " refused, " << restored << " restored)" << std::endl;
  // The untouched file still restores exactly.
  absl::StatusOr<std::unique_ptr<Shard>> again =
      Shard::Restore(shard_->options(), written.path());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->table().size(), stored_);
  ExpectConsistent();
}

// The insert log as a restarted shard reads it (Shard::Open: its checkpoint,
// then the logged batches). Byte mutations (checksums then wrong) must restore
// the checkpoint plus a whole prefix of the logged batches, or be refused with
// DataLoss. Mutations of the records' fields with both checksums recomputed
// reach the reader's own checks: refused with DataLoss or InvalidArgument, or
// restored into a working shard whose checkpointed data is intact and whose
// sampling probabilities are all valid.
TEST(FuzzedInsertLog, RestartFromAMutatedLogKeepsAPrefixOrRefuses) {
  const uint64_t seed = EnvOr("SOFTQ_FUZZ_SEED", 1) + 4;
  Mutator m(seed);
  Budget budget;
  const std::string dir = TempDir();
  ShardOptions options;
  options.shard_id = "wal";
  options.capacity = 1000;
  options.sampler = "prioritized";
  options.observation_dim = kObs;
  options.action_dim = kAct;
  DurabilityOptions durability;
  durability.checkpoint_path = CheckpointPath(dir, "wal");
  durability.log_path = InsertLogPath(dir, "wal");

  constexpr int kCheckpointed = 16;
  std::vector<uint64_t> prefix_sizes;  // table size after 0, 1, 2, ... records
  std::vector<uint64_t> record_offsets;  // where each record starts in the log
  {
    absl::StatusOr<std::unique_ptr<Shard>> shard =
        Shard::Open(options, durability, nullptr);
    ASSERT_TRUE(shard.ok()) << shard.status();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    google::protobuf::RepeatedField<float> none;
    ASSERT_TRUE(
        (*shard)->Insert(MakeBatch(kCheckpointed, 0, 1), none, deadline).ok());
    ASSERT_TRUE((*shard)->Checkpoint(durability.checkpoint_path).ok());
    // Batches of 3..8 transitions, with and without priorities and episode ids.
    int id = kCheckpointed;
    prefix_sizes.push_back(id);
    for (int r = 0; r < 8; ++r) {
      record_offsets.push_back(std::filesystem::file_size(durability.log_path));
      const int n = 3 + r % 6;
      proto::TransitionBatch batch = MakeBatch(n, id, 2);
      google::protobuf::RepeatedField<float> priorities;
      for (int i = 0; i < n; ++i) {
        if (r % 3 == 1) priorities.Add(0.5f + i);
        if (r % 2 == 0) {
          batch.add_episode_ids(r);
          batch.add_step_ids(i);
        }
      }
      ASSERT_TRUE((*shard)->Insert(batch, priorities, deadline).ok());
      id += n;
      prefix_sizes.push_back(id);
    }
  }
  const std::string good_log = ReadFile(durability.log_path);
  const std::string good_checkpoint = ReadFile(durability.checkpoint_path);
  record_offsets.push_back(good_log.size());

  const std::string run_dir = absl::StrCat(dir, "/run");
  ASSERT_EQ(::mkdir(run_dir.c_str(), 0755), 0);
  DurabilityOptions run = durability;
  run.checkpoint_path = CheckpointPath(run_dir, "wal");
  run.log_path = InsertLogPath(run_dir, "wal");
  uint64_t executions = 0, refused = 0, restored = 0, prefix_lengths = 0;
  while (budget.More()) {
    std::string log = good_log;
    const bool recompute = m.Chance(50);
    if (!recompute) {
      m.MutateBytes(&log);
    } else {
      // One record's header fields or payload, then its checksums made right.
      const size_t r = m.Below(record_offsets.size() - 1);
      const size_t at = record_offsets[r], end = record_offsets[r + 1];
      switch (m.Below(4)) {
        case 0: {  // batch_bytes, priority_count or first_key
          const uint64_t v = m.Integer();
          std::memcpy(&log[at + 4 * m.Below(3)], &v, 4);
          break;
        }
        case 1: {  // default_priority
          const float f = m.Float();
          std::memcpy(&log[at + 16], &f, 4);
          break;
        }
        default: {  // payload: a float (a priority or a value) or any bytes
          const size_t payload = at + 28;
          if (end - payload >= 4 && m.Chance(50)) {
            const float f = m.Float();
            std::memcpy(&log[payload + 4 * m.Below((end - payload) / 4)], &f,
                        4);
          } else {
            std::string bytes = log.substr(payload, end - payload);
            m.MutateBytes(&bytes);
            uint32_t batch_bytes;
            std::memcpy(&batch_bytes, &log[at], 4);
            batch_bytes = static_cast<uint32_t>(batch_bytes + bytes.size() -
                                                (end - payload));
            std::memcpy(&log[at], &batch_bytes, 4);
            log.replace(payload, end - payload, bytes);
          }
          break;
        }
      }
      uint32_t batch_bytes, priority_count;
      std::memcpy(&batch_bytes, &log[at], 4);
      std::memcpy(&priority_count, &log[at + 4], 4);
      const uint64_t payload_bytes = uint64_t{priority_count} * 4 + batch_bytes;
      if (at + 28 + payload_bytes <= log.size()) {
        const uint32_t crc = Crc32c(0, &log[at + 28], payload_bytes);
        std::memcpy(&log[at + 20], &crc, 4);
      }
      const uint32_t header_crc = Crc32c(0, &log[at], 24);
      std::memcpy(&log[at + 24], &header_crc, 4);
    }
    WriteFile(run.checkpoint_path, good_checkpoint);
    WriteFile(run.log_path, log);
    ShardRecovery recovery;
    absl::StatusOr<std::unique_ptr<Shard>> s =
        Shard::Open(options, run, &recovery);
    ++executions;
    if (!s.ok()) {
      ++refused;
      ASSERT_TRUE(absl::IsDataLoss(s.status()) ||
                  absl::IsInvalidArgument(s.status()))
          << s.status();
      ASSERT_TRUE(recompute || absl::IsDataLoss(s.status())) << s.status();
      continue;
    }
    ++restored;
    const Table& table = (*s)->table();
    if (!recompute) {
      // The checkpoint and a whole prefix of the logged batches, nothing else.
      const auto it =
          std::find(prefix_sizes.begin(), prefix_sizes.end(), table.size());
      ASSERT_NE(it, prefix_sizes.end())
          << "restored " << table.size() << " transitions";
      prefix_lengths += static_cast<uint64_t>(it - prefix_sizes.begin());
    }
    ASSERT_GE(table.size(), static_cast<uint64_t>(kCheckpointed));
    ASSERT_LE(table.size(), options.capacity);
    proto::SampleResponse out;
    const absl::Status st =
        (*s)->Sample(256, absl::Now() + absl::Seconds(1), nullptr, &out);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_EQ(out.keys_size(), 256);
    for (int i = 0; i < out.keys_size(); ++i) {
      ASSERT_TRUE(out.probabilities(i) > 0 && out.probabilities(i) <= 1)
          << "probability " << out.probabilities(i) << " of key "
          << out.keys(i);
      if (out.keys(i) < static_cast<uint64_t>(kCheckpointed) || !recompute) {
        ASSERT_EQ(CheckedId(out.batch(), i), static_cast<int>(out.keys(i)));
      }
    }
  }
  std::cout << "InsertLog: seed " << seed << ", " << executions
            << " mutated logs (" << refused << " refused, " << restored
            << " restored; byte mutations kept " << prefix_lengths
            << " logged batches in all)" << std::endl;
  // The untouched log restores everything.
  WriteFile(run.checkpoint_path, good_checkpoint);
  WriteFile(run.log_path, good_log);
  absl::StatusOr<std::unique_ptr<Shard>> again =
      Shard::Open(options, run, nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->table().size(), prefix_sizes.back());
}

}  // namespace
}  // namespace softq
