// The SQL hyperparameter flags (--reward_scale, --value_particles, ...), shared
// by every binary that trains, and their translation into a validated
// SqlConfig.
#ifndef SOFTQ_LEARNER_SQL_FLAGS_H_
#define SOFTQ_LEARNER_SQL_FLAGS_H_

#include "absl/status/statusor.h"
#include "learner/sql_agent.h"

namespace softq {

// Reads the flags; InvalidArgument "--flag=value: requirement" for the first
// bad one.
absl::StatusOr<SqlConfig> SqlConfigFromFlags(int64_t observation_dim,
                                             int64_t action_dim);

}  // namespace softq

#endif  // SOFTQ_LEARNER_SQL_FLAGS_H_
