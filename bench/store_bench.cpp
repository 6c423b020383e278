// What a store call costs on the I/O thread: SQLite (file, WAL) against PostgreSQL (a local
// throw-away server over loopback TCP, tests/store/postgres_server.h). The hub looks a context
// up once per accepted PRES and checks membership per subscribe; serve polls the change counter
// once a second; writes are admin operations.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>
#include <string>

#include "store/postgres_server.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"

namespace {

using namespace presd;

std::string sqlite_path() {
  struct Dir {
    std::string path;
    Dir() {
      path = (std::filesystem::temp_directory_path() / "presd-bench-XXXXXX").string();
      if (::mkdtemp(path.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path + "/presd.db";
}

// arg 0: SQLite file, 1: PostgreSQL. One populated store per backend, shared by the benchmarks.
Store& store(std::int64_t backend) {
  static std::unique_ptr<Store> stores[2];
  auto& s = stores[backend];
  if (!s) {
    if (backend == 0) s = std::make_unique<SqliteStore>(sqlite_path());
    else s = std::make_unique<PostgresStore>(presd::testing::postgres_server().fresh_database());
    for (int i = 0; i < 100; ++i) {
      Context c{"room:" + std::to_string(i), "owner.example.net", "owner.example.net", 1};
      (void)s->create_context(c);
      for (int m = 0; m < 20; ++m) (void)s->grant(c.id, "user" + std::to_string(m) + ".example.net", Role::member);
    }
  }
  return *s;
}

void label(benchmark::State& st) { st.SetLabel(st.range(0) == 0 ? "sqlite" : "postgres"); }

void BM_FindContext(benchmark::State& st) {
  Store& s = store(st.range(0));
  int i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(s.find_context("room:" + std::to_string(i++ % 100)));
  label(st);
}

void BM_FindMember(benchmark::State& st) {
  Store& s = store(st.range(0));
  int i = 0;
  for (auto _ : st) {
    benchmark::DoNotOptimize(s.find_member("room:" + std::to_string(i % 100), "user" + std::to_string(i % 20) + ".example.net"));
    ++i;
  }
  label(st);
}

void BM_ChangeCounter(benchmark::State& st) {
  Store& s = store(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(s.external_change_counter());
  label(st);
}

void BM_GrantUpsert(benchmark::State& st) {  // a write: one transaction (PostgreSQL: + version bump)
  Store& s = store(st.range(0));
  int i = 0;
  for (auto _ : st) {
    Status r = s.grant("room:" + std::to_string(i % 100), "user" + std::to_string(i % 20) + ".example.net",
                       i % 2 ? Role::member : Role::observer);
    if (!r) st.SkipWithError(r.error().message.c_str());
    ++i;
  }
  label(st);
}

BENCHMARK(BM_FindContext)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FindMember)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChangeCounter)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GrantUpsert)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
