// Inserts and samples take turns at the shard's lock (Shard::AwaitTurnLocked):
// a call that waits behind a call of the other kind goes before the next call
// of that kind. absl::Mutex alone is not fair: on a quiet machine an inserter
// that takes the lock again as soon as it lets go let a sampler through about
// once per 57 inserts (replay_bench --mode=checkpoint_stall, baseline rows:
// bench/results/replay/checkpoint_stall.txt).
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "replay/shard.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::MakeBatch;

constexpr int kBatch = 256;

class ShardTurns : public ::testing::Test {
 protected:
  void SetUp() override {
    ShardOptions options;
    options.capacity = 100000;
    options.seed = 1;
    absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Create(options);
    ASSERT_TRUE(shard.ok()) << shard.status();
    shard_ = std::move(*shard);
    ASSERT_TRUE(Insert().ok());
  }

  absl::Status Insert() {
    return shard_->Insert(MakeBatch(kBatch, 0), none_, absl::InfiniteFuture())
        .status();
  }
  // The table size the sample drew from.
  uint64_t Sample() {
    proto::SampleResponse response;
    EXPECT_TRUE(
        shard_->Sample(1, absl::InfiniteFuture(), nullptr, &response).ok());
    return response.table_size();
  }

  // Runs `calls` one after another 100 ms apart while the table is held, so
  // that the first stops inside the shard's lock (an insert at its copy, a
  // sample at its read) and the others wait for that lock in the order they
  // came; then lets go and waits for them all. Reads share the table's lock,
  // so a read holds it and a writer waits behind that read: reads that come
  // after a waiting writer wait too.
  void ArriveInOrder(const std::vector<std::function<void()>>& calls) {
    absl::Notification held, release;
    std::thread holder([&] {
      proto::TransitionBatch out;
      const uint64_t key = 0;
      EXPECT_TRUE(shard_->table()
                      .Read(absl::MakeConstSpan(&key, 1), &out,
                            [&] {
                              held.Notify();
                              release.WaitForNotification();
                            })
                      .ok());
    });
    held.WaitForNotification();
    // The writer: sets the counters to what they are (changes nothing).
    Table& table = const_cast<Table&>(shard_->table());
    const uint64_t inserts_total = table.Info().inserts_total;
    ActorCounts actors = table.Actors();
    std::thread writer(
        [&] { table.SetCounters(inserts_total, std::move(actors)); });
    absl::SleepFor(absl::Milliseconds(100));
    std::vector<std::thread> threads;
    for (const auto& call : calls) {
      threads.emplace_back(call);
      absl::SleepFor(absl::Milliseconds(100));
    }
    release.Notify();
    holder.join();
    writer.join();
    for (std::thread& t : threads) t.join();
  }

  std::unique_ptr<Shard> shard_;
  const google::protobuf::RepeatedField<float> none_;
};

TEST_F(ShardTurns, ASampleWaitingBehindAnInsertGoesBeforeTheNextInsert) {
  uint64_t drew_from = 0;
  ArriveInOrder({[&] { EXPECT_TRUE(Insert().ok()); },
                 [&] { EXPECT_TRUE(Insert().ok()); },
                 [&] { drew_from = Sample(); }});
  // The sample drew from the table as the first insert left it.
  EXPECT_EQ(drew_from, 2u * kBatch);
  EXPECT_EQ(shard_->table().size(), 3u * kBatch);
}

TEST_F(ShardTurns, AnInsertWaitingBehindASampleGoesBeforeTheNextSample) {
  uint64_t first = 0, second = 0;
  ArriveInOrder({[&] { first = Sample(); }, [&] { second = Sample(); },
                 [&] { EXPECT_TRUE(Insert().ok()); }});
  EXPECT_EQ(first, 1u * kBatch);
  // The second sample drew after the insert.
  EXPECT_EQ(second, 2u * kBatch);
}

}  // namespace
}  // namespace softq
