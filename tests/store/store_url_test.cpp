#include "store/store_url.h"

#include <gtest/gtest.h>

namespace presd {
namespace {

TEST(StoreUrl, AbsentMeansTheDataDirSqliteFile) {
  auto w = parse_store_url("", "/var/lib/presd/presd.db");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->backend, StoreBackend::sqlite);
  EXPECT_EQ(w->target, "/var/lib/presd/presd.db");
}

TEST(StoreUrl, PostgresSchemesKeepTheWholeUrl) {
  for (const char* url : {"postgres://u:p@db.example.net:5433/presd?sslmode=require", "postgresql://localhost/presd"}) {
    auto w = parse_store_url(url, "ignored");
    ASSERT_TRUE(w.ok()) << url;
    EXPECT_EQ(w->backend, StoreBackend::postgres);
    EXPECT_EQ(w->target, url);
  }
}

TEST(StoreUrl, SqliteForm) {
  auto w = parse_store_url("sqlite:/srv/presd.db", "ignored");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->backend, StoreBackend::sqlite);
  EXPECT_EQ(w->target, "/srv/presd.db");
  w = parse_store_url("sqlite:///srv/presd.db", "ignored");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->target, "/srv/presd.db");
  w = parse_store_url("sqlite:relative.db", "ignored");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->target, "relative.db");
  EXPECT_EQ(parse_store_url("sqlite:", "ignored").code(), ErrorCode::bad_request);
}

TEST(StoreUrl, UnknownSchemesAreRefusedWithoutThePassword) {
  for (const char* url : {"mysql://u:pw1@h/db", "host=localhost dbname=presd", "POSTGRES://h/db", "/tmp/presd.db"}) {
    auto w = parse_store_url(url, "ignored");
    ASSERT_FALSE(w.ok()) << url;
    EXPECT_EQ(w.code(), ErrorCode::bad_request);
    EXPECT_EQ(w.error().message.find("pw1"), std::string::npos) << w.error().message;
  }
}

TEST(StoreUrl, RedactsPasswords) {
  EXPECT_EQ(redact_store_url("postgres://presd:s3cret@db:5432/presd"), "postgres://presd:***@db:5432/presd");
  EXPECT_EQ(redact_store_url("postgresql://presd:p@ss@db/presd"), "postgresql://presd:***@db/presd");
  EXPECT_EQ(redact_store_url("postgresql://presd:%40x%2F@db/presd"), "postgresql://presd:***@db/presd");
  EXPECT_EQ(redact_store_url("postgres://db/presd?user=u&password=s3cret&sslmode=require"),
            "postgres://db/presd?user=u&password=***&sslmode=require");
  EXPECT_EQ(redact_store_url("postgres://u:a@h/d?password=b"), "postgres://u:***@h/d?password=***");
  EXPECT_EQ(redact_store_url("postgres://h1:5432,h2:5433/presd"), "postgres://h1:5432,h2:5433/presd");
  // Nothing secret: unchanged.
  EXPECT_EQ(redact_store_url("postgres://presd@db/presd"), "postgres://presd@db/presd");
  EXPECT_EQ(redact_store_url("postgres://db/presd?passwordless=1"), "postgres://db/presd?passwordless=1");
  EXPECT_EQ(redact_store_url("sqlite:/srv/presd.db"), "sqlite:/srv/presd.db");
}

}  // namespace
}  // namespace presd
