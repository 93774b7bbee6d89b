// The SQL hyperparameter flags (--reward_scale, --value_particles, ...), shared
// by every binary that trains, and their translation into a validated
// SqlConfig.
#ifndef SOFTQ_LEARNER_SQL_FLAGS_H_
#define SOFTQ_LEARNER_SQL_FLAGS_H_

#include "absl/status/statusor.h"
#include "learner/sql_config.h"

namespace softq {

// Reads the flags; InvalidArgument "--flag=value: requirement" for the first
// bad one (ValidateSqlConfig's error, phrased as the flag of the field's name).
absl::StatusOr<SqlConfig> SqlConfigFromFlags(int64_t observation_dim,
                                             int64_t action_dim);

}  // namespace softq

#endif  // SOFTQ_LEARNER_SQL_FLAGS_H_
