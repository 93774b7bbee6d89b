// The environment registry and --env_config: self-registration (an environment
// registered in this file, with no list edited), typed parameters, and one-line
// errors naming the culprit for every bad name, key and value.
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "env/env_config.h"
#include "env/registry.h"

namespace softq {
namespace {

// A one-dimensional walk whose step size and episode length are parameters.
class WalkEnv : public Environment {
 public:
  WalkEnv(double step, int max_steps) : step_(step), max_steps_(max_steps) {}
  EnvSpec spec() const override { return {1, 1, max_steps_}; }
  void Seed(uint64_t) override {}
  std::vector<float> Reset() override { return {x_ = 0}; }
  absl::StatusOr<StepResult> Step(absl::Span<const float> a) override {
    x_ += static_cast<float>(step_) * a[0];
    return StepResult{{x_}, x_, false, false};
  }

 private:
  double step_;
  int max_steps_;
  float x_ = 0;
};

SOFTQ_REGISTER_ENVIRONMENT(
    "test_walk", "a 1-d walk; keys: step (0.5), max_steps (10), mode (a|b)",
    [](EnvConfig& config,
       uint64_t) -> absl::StatusOr<std::unique_ptr<Environment>> {
      absl::StatusOr<double> step = config.Double("step", 0.5, 0, 10);
      if (!step.ok()) return step.status();
      absl::StatusOr<int> max_steps = config.Int("max_steps", 10, 1, 100);
      if (!max_steps.ok()) return max_steps.status();
      absl::StatusOr<std::string> mode = config.Choice("mode", {"a", "b"});
      if (!mode.ok()) return mode.status();
      return std::make_unique<WalkEnv>(*step, *max_steps);
    });

std::string Error(absl::string_view name, absl::string_view config) {
  absl::StatusOr<std::unique_ptr<Environment>> env =
      MakeEnvironment(name, config, 0);
  EXPECT_FALSE(env.ok()) << name << " " << config;
  if (env.ok()) return "";
  EXPECT_EQ(env.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(env.status().message());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  return message;
}

TEST(EnvRegistry, AnEnvironmentRegisteredInItsOwnFileIsBuiltByName) {
  bool listed = false;
  for (const EnvRegistration& r : RegisteredEnvironments()) {
    listed |= r.name == "test_walk";
  }
  EXPECT_TRUE(listed);
  EXPECT_TRUE(absl::StrContains(EnvironmentHelp(), "test_walk: a 1-d walk"));
  absl::StatusOr<std::unique_ptr<Environment>> env =
      MakeEnvironment("test_walk", "", 0);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->spec().max_episode_steps, 10);
}

TEST(EnvRegistry, TheBuiltInEnvironmentsAreRegistered) {
  for (const char* name : {"multigoal", "swimmer_speed", "swimmer_target"}) {
    EXPECT_TRUE(MakeEnvironment(name, "", 0).ok()) << name;
  }
}

TEST(EnvRegistry, ParametersReachTheEnvironment) {
  absl::StatusOr<std::unique_ptr<Environment>> env =
      MakeEnvironment("test_walk", "step=2,max_steps=7,mode=b", 0);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->spec().max_episode_steps, 7);
  (*env)->Reset();
  const float action = 1.0f;
  EXPECT_FLOAT_EQ((*env)->Step({&action, 1})->observation[0], 2.0f);
  absl::StatusOr<std::unique_ptr<Environment>> swimmer =
      MakeEnvironment("swimmer_speed", "max_steps=50", 0);
  ASSERT_TRUE(swimmer.ok()) << swimmer.status();
  EXPECT_EQ((*swimmer)->spec().max_episode_steps, 50);
}

TEST(EnvRegistry, AnUnknownNameIsOneLineListingTheKnownOnes) {
  const std::string e = Error("cartpole", "");
  EXPECT_TRUE(absl::StrContains(e, "--env=cartpole")) << e;
  EXPECT_TRUE(absl::StrContains(e, "multigoal")) << e;
  EXPECT_TRUE(absl::StrContains(e, "test_walk")) << e;
}

TEST(EnvRegistry, AKeyTheEnvironmentDoesNotTakeIsNamed) {
  EXPECT_EQ(Error("test_walk", "stpe=2"),
            "--env_config: stpe=2: test_walk has no key stpe");
  EXPECT_EQ(Error("multigoal", "layout=u"),
            "--env_config: layout=u: multigoal has no key layout");
}

TEST(EnvRegistry, ABadValueIsNamedWithItsKey) {
  EXPECT_EQ(Error("test_walk", "step=fast"),
            "--env_config: step=fast: not a finite number");
  EXPECT_EQ(Error("test_walk", "step=nan"),
            "--env_config: step=nan: not a finite number");
  EXPECT_EQ(Error("test_walk", "step=11"),
            "--env_config: step=11: outside [0, 10]");
  EXPECT_EQ(Error("test_walk", "max_steps=2.5"),
            "--env_config: max_steps=2.5: not an integer");
  EXPECT_EQ(Error("test_walk", "max_steps=0"),
            "--env_config: max_steps=0: outside [1, 100]");
  EXPECT_EQ(Error("test_walk", "mode=c"),
            "--env_config: mode=c: not one of a, b");
  EXPECT_EQ(Error("swimmer_target", "target_x=east"),
            "--env_config: target_x=east: not a finite number");
}

TEST(EnvRegistry, AMalformedConfigIsNamed) {
  EXPECT_EQ(Error("test_walk", "step"),
            "--env_config: 'step' is not key=value");
  EXPECT_EQ(Error("test_walk", "=2"), "--env_config: '=2' is not key=value");
  EXPECT_EQ(Error("test_walk", "step=1,,max_steps=2"),
            "--env_config: '' is not key=value");
  EXPECT_EQ(Error("test_walk", "step=1,step=2"),
            "--env_config: step is given twice");
}

TEST(EnvConfig, TypedReadsFallBackWhenAbsent) {
  absl::StatusOr<EnvConfig> config = EnvConfig::Parse("flag=true,name=x=y");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->Double("absent", 1.5), 1.5);
  EXPECT_EQ(*config->Int("absent_int", 3, 0, 9), 3);
  EXPECT_TRUE(*config->Bool("flag", false));
  EXPECT_EQ(config->String("name", ""), "x=y");  // the first '=' splits
  EXPECT_TRUE(config->CheckAllRead("e").ok());
  absl::StatusOr<EnvConfig> bad = EnvConfig::Parse("flag=maybe");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->Bool("flag", false).status().message(),
            "--env_config: flag=maybe: not true/false");
}

}  // namespace
}  // namespace softq
