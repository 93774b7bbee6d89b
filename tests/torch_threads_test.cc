// OpenBLAS's kernels for this CPU: which set a CPU gets, and the restart that
// switches to it in place, end to end on this machine
// (tests/openblas_restart_probe.cc).
#include "common/torch_threads.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace softq {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

CpuFeatures Avx2Fma() {
  CpuFeatures cpu;
  cpu.avx2 = cpu.fma = true;
  return cpu;
}

CpuFeatures Avx512() {
  CpuFeatures cpu = Avx2Fma();
  cpu.avx512f = cpu.avx512cd = cpu.avx512bw = cpu.avx512dq = cpu.avx512vl =
      true;
  return cpu;
}

TEST(OpenBlasCoreTypeFor, NamesSkylakeXForAvx512WithCdBwDqVl) {
  EXPECT_EQ(OpenBlasCoreTypeFor(Avx512()), "SkylakeX");
}

TEST(OpenBlasCoreTypeFor, NamesHaswellForAvx2AndFmaOrPartAvx512) {
  EXPECT_EQ(OpenBlasCoreTypeFor(Avx2Fma()), "Haswell");
  CpuFeatures avx512f_only = Avx2Fma();
  avx512f_only.avx512f = true;  // Knights Landing-like: no BW/DQ/VL
  EXPECT_EQ(OpenBlasCoreTypeFor(avx512f_only), "Haswell");
  CpuFeatures no_vl = Avx512();
  no_vl.avx512vl = false;
  EXPECT_EQ(OpenBlasCoreTypeFor(no_vl), "Haswell");
}

TEST(OpenBlasCoreTypeFor, NamesNothingBelowAvx2WithFma) {
  CpuFeatures avx2_only;
  avx2_only.avx2 = true;
  EXPECT_EQ(OpenBlasCoreTypeFor(avx2_only), "");
  EXPECT_EQ(OpenBlasCoreTypeFor(CpuFeatures{}), "");
}

struct ProbeRun {
  std::vector<std::string>
      starts;  // "<pid> <BLAS line>" before the restart call
  std::vector<std::string> running;  // the same after it
  std::vector<std::string> args;
};

// Runs the probe through the shell with `env` (an assignment, or -u NAME) and
// two arguments.
ProbeRun RunProbe(const std::string& env) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string probe = absl::StrCat(srcdir != nullptr ? srcdir : ".",
                                         "/softq/tests/openblas_restart_probe");
  const std::string command =
      absl::StrCat("env ", env, " ", probe, " one 'two words' 2>&1");
  ProbeRun run;
  FILE* out = popen(command.c_str(), "r");
  if (out == nullptr) return run;
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), out)) > 0;)
    text.append(buffer, n);
  EXPECT_EQ(pclose(out), 0) << text;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kind_rest =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kind_rest.first == "start") run.starts.push_back(kind_rest.second);
    if (kind_rest.first == "running") run.running.push_back(kind_rest.second);
    if (kind_rest.first == "arg") run.args.push_back(kind_rest.second);
  }
  return run;
}

std::string Pid(const std::string& line) {
  return line.substr(0, line.find(' '));
}

TEST(RestartWithOpenBlasKernelsForThisCpu, LeavesPrescottKernelsBehindInPlace) {
  const ProbeRun run = RunProbe("-u OPENBLAS_CORETYPE");
  ASSERT_THAT(run.running, SizeIs(1));
  ASSERT_THAT(run.starts, Not(::testing::IsEmpty()));
  // The first start line warns exactly when this CPU and this OpenBLAS need the
  // restart (on the Sapphire Rapids-class machine this project is built on,
  // they do).
  const bool needed =
      run.starts[0].find("runs its Prescott") != std::string::npos;
  std::cout << "restart " << (needed ? "needed" : "not needed")
            << " here: " << run.starts[0] << "\n";
  EXPECT_THAT(run.starts, SizeIs(needed ? 2 : 1));
  EXPECT_THAT(run.running[0], Not(HasSubstr("runs its Prescott")));
  for (const std::string& start : run.starts)
    EXPECT_EQ(Pid(start), Pid(run.running[0]));
  EXPECT_THAT(run.args, ElementsAre("one", "two words"));
}

TEST(RestartWithOpenBlasKernelsForThisCpu, KeepsASetCoreType) {
  const ProbeRun run = RunProbe("OPENBLAS_CORETYPE=Haswell");
  ASSERT_THAT(run.starts, SizeIs(1));
  if (run.starts[0].find("OpenBLAS") == std::string::npos)
    GTEST_SKIP() << "BLAS not OpenBLAS";
  ASSERT_THAT(run.running, SizeIs(1));
  EXPECT_THAT(run.running[0], HasSubstr(" Haswell "));
  EXPECT_THAT(run.args, ElementsAre("one", "two words"));
}

}  // namespace
}  // namespace softq
