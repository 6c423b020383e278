#include "store/open_store.h"

#include "store/postgres_store.h"
#include "store/sqlite_store.h"

namespace presd {

std::unique_ptr<Store> open_store(const StoreLocation& where) {
  switch (where.backend) {
    case StoreBackend::postgres: return std::make_unique<PostgresStore>(where.target);
    case StoreBackend::sqlite: break;
  }
  return std::make_unique<SqliteStore>(where.target);
}

}  // namespace presd
