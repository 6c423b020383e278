// Stops and removes the tests' PostgreSQL server (postgres_server.h) after the last test, also
// when tests failed. Included by every test file that uses the server: registered once.
#pragma once

#include <gtest/gtest.h>

#include "store/postgres_server.h"

namespace presd::testing {

class PostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { postgres_server().destroy(); }
};

inline ::testing::Environment* const kPostgresEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

}  // namespace presd::testing
