// One libpq connection for the PostgreSQL store: connects lazily, reconnects after the server
// went away, sends only parameterised statements, and turns every failure into a coded store
// error (connection problems -> `unavailable`). Not thread-safe: one per thread, like the store.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct pg_conn;    // PGconn: libpq stays out of every header outside this module's .cpp files
struct pg_result;  // PGresult

namespace presd::pg {

struct ResultDeleter {
  void operator()(pg_result* r) const;
};
using ResultPtr = std::unique_ptr<pg_result, ResultDeleter>;

// One statement parameter: text, NULL, or raw bytes sent in binary form (bytea).
struct Param {
  std::optional<std::string> value;
  bool binary = false;

  static Param text(std::string_view v) { return {std::string(v), false}; }
  static Param integer(std::int64_t v) { return {std::to_string(v), false}; }
  static Param bytes(std::string_view v) { return {std::string(v), true}; }
  static Param null() { return {std::nullopt, false}; }
};

// A successful result. Accessors throw std::runtime_error on a value of the wrong shape (a
// corrupt row); store methods turn that into `internal`.
class Rows {
 public:
  explicit Rows(ResultPtr r) : r_(std::move(r)) {}
  int size() const;
  bool is_null(int row, int col) const;
  std::string text(int row, int col) const;
  std::int64_t integer(int row, int col) const;
  bool boolean(int row, int col) const;
  std::string bytes(int row, int col) const;  // a bytea column (text-format hex)
  std::int64_t affected() const;              // rows changed by INSERT/UPDATE/DELETE

 private:
  ResultPtr r_;
};

// Whether a statement may be sent again on a fresh connection when the old one turned out to be
// dead: only for the first statement of an operation (a read, or BEGIN), never mid-transaction.
enum class Retry { no, once_if_stale };

// SQLSTATE -> store error. `on_constraint` replaces unique and foreign-key violations.
Error map_sqlstate(std::string_view op, std::string_view sqlstate, std::string_view message,
                   const std::optional<Error>& on_constraint);

class Connection {
 public:
  // `url` is a libpq URL (postgres://...). Nothing is connected until connect() or exec().
  explicit Connection(std::string url);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects unless already connected; `unavailable` with libpq's reason when it cannot.
  Status connect(std::string_view op);
  Result<Rows> exec(std::string_view op, const std::string& sql, const std::vector<Param>& params = {},
                    Retry retry = Retry::no, const std::optional<Error>& on_constraint = std::nullopt);
  // Several statements without parameters (schema migrations).
  Status exec_script(std::string_view op, const std::string& sql);
  // Best effort: ends a failed transaction so the connection can be used again.
  void rollback() noexcept;

  const std::string& redacted_url() const { return redacted_url_; }

 private:
  bool usable() const;

  std::string url_;
  std::string redacted_url_;
  pg_conn* conn_ = nullptr;
};

}  // namespace presd::pg
