// Specification of learner/sql_config: the hyperparameters' checks, phrased by
// the config's fields (learner/sql_flags phrases them as flags).
#include "learner/sql_config.h"

#include <gtest/gtest.h>

#include <string>

namespace softq {
namespace {

TEST(SqlConfig, TakesTheAblationsAndRefusesRepulsionForDdpg) {
  SqlConfig config;
  config.q_learning_rate = 0;  // frozen networks: a negative control
  config.policy_learning_rate = 0;
  config.svgd_repulsion = 0;
  EXPECT_TRUE(ValidateSqlConfig(config).ok()) << ValidateSqlConfig(config);
  config.svgd_repulsion = -1;
  EXPECT_NE(
      ValidateSqlConfig(config).message().find("SqlConfig.svgd_repulsion=-1"),
      std::string::npos);
  config.svgd_repulsion = 0;
  config.algorithm = Algorithm::kDdpg;
  const absl::Status ddpg = ValidateSqlConfig(config);
  EXPECT_EQ(ddpg.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ddpg.message().find("SqlConfig.svgd_repulsion=0"),
            std::string::npos)
      << ddpg;
}

TEST(SqlConfig, RefusesAParticleSplitThatMovesNoneOrKeepsFewerThanTwo) {
  SqlConfig config;
  config.kernel_particles = 3;
  config.kernel_update_ratio = 0.2;  // moves 0
  absl::Status moves_none = ValidateSqlConfig(config);
  EXPECT_EQ(moves_none.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(moves_none.message().find("SqlConfig.kernel_update_ratio=0.2"),
            std::string::npos)
      << moves_none;
  config.kernel_particles = 2;
  config.kernel_update_ratio = 0.5;  // keeps 1: no bandwidth (log 1 = 0)
  EXPECT_EQ(ValidateSqlConfig(config).code(),
            absl::StatusCode::kInvalidArgument);
  config.kernel_particles = 3;  // moves 1, keeps 2
  EXPECT_TRUE(ValidateSqlConfig(config).ok());
}

TEST(SqlConfig, NamesTheFieldAndItsValue) {
  SqlConfig config;
  config.discount = 1.5;
  EXPECT_EQ(ValidateSqlConfig(config).message(),
            "SqlConfig.discount=1.5: must be in [0, 1]");
  config.discount = 0.99;
  config.reward_scale = 0;
  EXPECT_EQ(ValidateSqlConfig(config).message(),
            "SqlConfig.reward_scale=0: must be in [1e-09, 1000000000]");
  config.reward_scale = 1;
  config.hidden = {128, 0};
  EXPECT_EQ(ValidateSqlConfig(config).message(),
            "SqlConfig.hidden=0: must be at least 1");
}

TEST(SqlConfig, MovedParticlesRoundsDown) {
  EXPECT_EQ(MovedParticles(32, 0.5), 16);
  EXPECT_EQ(MovedParticles(3, 0.5), 1);
  EXPECT_EQ(MovedParticles(3, 0.2), 0);
}

}  // namespace
}  // namespace softq
