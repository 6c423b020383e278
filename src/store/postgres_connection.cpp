#include "store/postgres_connection.h"

#include <libpq-fe.h>

#include <charconv>
#include <stdexcept>

#include "store/store_url.h"

namespace presd::pg {
namespace {

std::string trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

Error unavailable(std::string_view op, std::string_view why) {
  return Error(ErrorCode::unavailable, "store unavailable (" + std::string(op) + "): " + trimmed(why));
}

// libpq prints NOTICEs (e.g. "table exists, skipping") to stderr by default: CLI output must
// stay clean, and nothing in them needs an operator.
void ignore_notice(void*, const char*) {}

}  // namespace

void ResultDeleter::operator()(pg_result* r) const { PQclear(r); }

Error map_sqlstate(std::string_view op, std::string_view sqlstate, std::string_view message,
                   const std::optional<Error>& on_constraint) {
  if ((sqlstate == "23505" || sqlstate == "23503") && on_constraint) return *on_constraint;
  const std::string_view cls = sqlstate.substr(0, 2);
  // Connection trouble, shutdown, lack of resources, lock or serialization contention, a
  // read-only replica: the request may succeed later, so it is `unavailable`, not a bug.
  if (cls == "08" || cls == "53" || cls == "57" || cls == "58" || cls == "40" || sqlstate == "55P03" ||
      sqlstate == "25006")
    return unavailable(op, message);
  // Data the database cannot hold (e.g. invalid UTF-8): the input is at fault.
  if (cls == "22") return Error(ErrorCode::bad_request, "store " + std::string(op) + ": " + trimmed(message));
  return Error(ErrorCode::internal, "store " + std::string(op) + " (SQLSTATE " + std::string(sqlstate) +
                                        "): " + trimmed(message));
}

// ---- Rows ----

int Rows::size() const { return PQntuples(r_.get()); }

bool Rows::is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }

std::string Rows::text(int row, int col) const {
  return std::string(PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
}

std::int64_t Rows::integer(int row, int col) const {
  const char* v = PQgetvalue(r_.get(), row, col);
  const char* end = v + PQgetlength(r_.get(), row, col);
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(v, end, out);
  if (ec != std::errc() || ptr != end || v == end) throw std::runtime_error("corrupt row: not an integer: " + text(row, col));
  return out;
}

bool Rows::boolean(int row, int col) const {
  const std::string v = text(row, col);
  if (v == "t") return true;
  if (v == "f") return false;
  throw std::runtime_error("corrupt row: not a boolean: " + v);
}

std::string Rows::bytes(int row, int col) const {
  std::size_t len = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col)), &len);
  if (raw == nullptr) throw std::runtime_error("corrupt row: bad bytea");
  std::string out(reinterpret_cast<const char*>(raw), len);
  PQfreemem(raw);
  return out;
}

std::int64_t Rows::affected() const {
  const char* n = PQcmdTuples(r_.get());
  std::int64_t out = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), out);
  return out;
}

// ---- Connection ----

Connection::Connection(std::string url) : url_(std::move(url)), redacted_url_(redact_store_url(url_)) {}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

bool Connection::usable() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }

Status Connection::connect(std::string_view op) {
  if (usable()) return Status::Ok();
  if (conn_) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  // Defaults first: a value in the URL (expanded from dbname) overrides them.
  const char* keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname", nullptr};
  const char* values[] = {"5", "presd", "UTF8", url_.c_str(), nullptr};
  pg_conn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return unavailable(op, "libpq could not allocate a connection");
  if (PQstatus(c) != CONNECTION_OK) {
    const std::string why = PQerrorMessage(c);
    PQfinish(c);
    return unavailable(op, "cannot connect to " + redacted_url_ + ": " + why);
  }
  PQsetNoticeProcessor(c, ignore_notice, nullptr);
  conn_ = c;
  return Status::Ok();
}

Result<Rows> Connection::exec(std::string_view op, const std::string& sql, const std::vector<Param>& params,
                              Retry retry, const std::optional<Error>& on_constraint) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const Param& p : params) {
    // Text parameters travel as C strings: an embedded NUL would silently cut the value.
    if (p.value && !p.binary && p.value->find('\0') != std::string::npos)
      return Error(ErrorCode::bad_request, "store " + std::string(op) + ": text contains a NUL byte");
    values.push_back(p.value ? p.value->c_str() : nullptr);
    lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
  for (int attempt = 0;; ++attempt) {
    const bool reused = usable();
    if (Status s = connect(op); !s) return s.error();
    ResultPtr r(PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                             lengths.data(), formats.data(), /*resultFormat=*/0));
    const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(std::move(r));
    if (PQstatus(conn_) != CONNECTION_OK) {
      // The server went away (restart, failover, idle timeout): a stale connection only shows
      // it on use, so the first statement of an operation gets one more go on a new one.
      if (retry == Retry::once_if_stale && reused && attempt == 0) continue;
      return unavailable(op, "connection to " + redacted_url_ + " lost: " + std::string(PQerrorMessage(conn_)));
    }
    if (!r) return unavailable(op, PQerrorMessage(conn_));
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    return map_sqlstate(op, state ? state : "", PQresultErrorMessage(r.get()), on_constraint);
  }
}

Status Connection::exec_script(std::string_view op, const std::string& sql) {
  if (Status s = connect(op); !s) return s;
  ResultPtr r(PQexec(conn_, sql.c_str()));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::Ok();
  if (!r || PQstatus(conn_) != CONNECTION_OK) return unavailable(op, PQerrorMessage(conn_));
  const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
  return map_sqlstate(op, state ? state : "", PQresultErrorMessage(r.get()), std::nullopt);
}

void Connection::rollback() noexcept {
  if (!usable()) return;
  ResultPtr r(PQexec(conn_, "ROLLBACK"));
}

}  // namespace presd::pg
