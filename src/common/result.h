// Errors as values (LevelDB's Status, C++23's expected): hot paths return Result<T>,
// exceptions stay at the edges (CLI, config, start-up).
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "common/error_code.h"

namespace presd {

struct Error {
  ErrorCode code;
  std::string message;           // human detail; never contains secrets
  std::int64_t retry_after_ms = 0;  // only for rate_limited

  Error(ErrorCode c, std::string msg = {}, std::int64_t retry_after = 0)
      : code(c), message(std::move(msg)), retry_after_ms(retry_after) {}
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}   // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }  // passes it on without a copy
  ErrorCode code() const { return error().code; }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT
  static Status Ok() { return {}; }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { assert(!ok()); return *error_; }
  Error&& error() && { assert(!ok()); return *std::move(error_); }
  ErrorCode code() const { return error().code; }

 private:
  std::optional<Error> error_;
};

}  // namespace presd
