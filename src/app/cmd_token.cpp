// `presd keygen`, `presd token sign|verify|issue`: offline tools for keys and tokens, used by
// operators, by the quick start and by the interop tests against npm jose.
#include <CLI/CLI.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "app/commands.h"
#include "app/data_dir.h"
#include "common/clock.h"
#include "keys/key_ring.h"
#include "store/open_store.h"
#include "token/access_token.h"
#include "token/base64.h"
#include "token/pres_token.h"

namespace presd::app {
namespace json = boost::json;
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

[[noreturn]] void fail(const Error& e) {
  throw CLI::RuntimeError(std::string(to_string(e.code)) + ": " + e.message, 1);
}

// The hosted tenants' keys: the store `--store` names, else the data dir's SQLite file.
std::unique_ptr<Store> open_key_store(const std::string& store_url, const std::string& data_dir) {
  auto where = parse_store_url(store_url, DataDir{data_dir}.db_path());
  if (!where) fail(where.error());
  try {
    return open_store(*where);
  } catch (const std::runtime_error& e) {
    fail(Error(ErrorCode::unavailable, e.what()));
  }
}

struct SignOptions {
  std::string key_file, data_dir, store_url, iss, kid, subtype = "TYPING", sub, aud, content;
  std::int64_t iat = -1, exp = -1;
};

void sign(const SignOptions& o) {
  PresClaims c;
  c.iss = o.iss;
  c.subtype = o.subtype;
  c.sub = o.sub;
  if (!o.aud.empty()) c.aud = o.aud;
  if (!o.content.empty()) c.content_json = o.content;
  c.iat = o.iat >= 0 ? o.iat : SystemClock().now_s();
  if (o.exp >= 0) c.exp = o.exp;

  std::optional<Es384PrivateKey> key;
  if (!o.key_file.empty()) {
    auto k = Es384PrivateKey::from_pem(read_file(o.key_file));
    if (!k) fail(k.error());
    key = std::move(k).value();
    c.k = o.kid;
    if (c.k.empty()) throw CLI::RuntimeError("--kid is required with --key", 1);
  } else {
    auto store = open_key_store(o.store_url, o.data_dir);
    KeyRing ring(*store);
    if (Status s = ring.load(); !s) fail(s.error());
    const TenantKey* tk = o.kid.empty() ? ring.signing_key(c.iss) : ring.find(c.iss, o.kid);
    if (!tk) fail(Error(ErrorCode::issuer_not_hosted, c.iss + " has no such key in " + (o.store_url.empty() ? o.data_dir : redact_store_url(o.store_url))));
    key = tk->private_key;
    c.k = tk->key_id;
  }
  if (Status s = validate_pres_claims(c); !s) fail(s.error());
  std::cout << sign_pres_token(c, *key) << '\n';
}

struct VerifyOptions {
  std::string token, public_key, public_key_file, data_dir, store_url;
  std::int64_t now = -1;
  std::int64_t ttl = 30;
  bool ignore_time = false;
};

void verify(const VerifyOptions& o) {
  auto t = parse_pres_token(o.token);
  if (!t) fail(t.error());
  std::optional<Es384PublicKey> key;
  if (!o.public_key.empty()) {
    auto der = b64::decode_std(o.public_key);
    if (!der) fail(Error(ErrorCode::bad_request, "--public-key must be standard base64 of an SPKI DER key"));
    auto k = Es384PublicKey::from_spki_der(*der);
    if (!k) fail(k.error());
    key = std::move(k).value();
  } else if (!o.public_key_file.empty()) {
    auto k = Es384PublicKey::from_pem(read_file(o.public_key_file));
    if (!k) fail(k.error());
    key = std::move(k).value();
  } else {
    auto store = open_key_store(o.store_url, o.data_dir);
    KeyRing ring(*store);
    if (Status s = ring.load(); !s) fail(s.error());
    const TenantKey* tk = ring.find(t->claims.iss, t->claims.k);
    if (!tk) fail(Error(ErrorCode::token_unknown_key, "no key " + t->claims.k + " for " + t->claims.iss));
    key = tk->public_key;
  }
  if (Status s = verify_pres_signature(*t, *key); !s) fail(s.error());
  if (!o.ignore_time) {
    const std::int64_t now_ms = o.now >= 0 ? o.now * 1000 : SystemClock().now_ms();
    Freshness f;
    f.ttl_s = o.ttl;
    if (Status s = check_freshness(t->claims, now_ms, f); !s) fail(s.error());
  }
  const PresClaims& c = t->claims;
  json::object out{{"valid", true}, {"iss", c.iss}, {"k", c.k}, {"t", c.type()}, {"sub", c.sub}, {"iat", c.iat}};
  if (c.aud) out["aud"] = *c.aud;
  if (c.exp) out["exp"] = *c.exp;
  if (c.content_json) out["c"] = json::parse(*c.content_json);
  std::cout << json::serialize(out) << '\n';
}

}  // namespace

void add_token_commands(CLI::App& root) {
  // keygen
  auto out_file = std::make_shared<std::string>();
  CLI::App* keygen = root.add_subcommand("keygen", "Generate an ES384 (P-384) key pair");
  keygen->add_option("--out", *out_file, "Write the PKCS#8 private key here (mode 0600)")->required();
  keygen->callback([out_file] {
    Es384PrivateKey key = Es384PrivateKey::generate();
    {
      std::ofstream f(*out_file, std::ios::trunc);
      if (!f) throw CLI::RuntimeError("cannot write " + *out_file, 1);
      ::chmod(out_file->c_str(), 0600);
      f << key.to_pem();
    }
    // The public key in the form /api/me serves: standard base64 of the SPKI DER.
    std::cout << b64::encode_std(key.public_key().spki_der()) << '\n';
  });

  CLI::App* token = root.add_subcommand("token", "Sign, verify and issue tokens");
  token->require_subcommand(1);

  auto so = std::make_shared<SignOptions>();
  CLI::App* sign_cmd = token->add_subcommand("sign", "Sign a PRES token (with --key, or a hosted tenant's newest key)");
  sign_cmd->add_option("--iss", so->iss, "Issuer id_tag")->required();
  sign_cmd->add_option("--sub", so->sub, "Context (a1~... or @id_tag)")->required();
  sign_cmd->add_option("--type", so->subtype, "Subtype: TYPING, ONLINE, AWAY, OFFLINE or app-defined")->capture_default_str();
  sign_cmd->add_option("--aud", so->aud, "Single target user");
  sign_cmd->add_option("--content", so->content, "The c claim, a JSON object");
  sign_cmd->add_option("--iat", so->iat, "Issued-at seconds (default: now)");
  sign_cmd->add_option("--exp", so->exp, "Expiry seconds");
  auto* key_opt = sign_cmd->add_option("--key", so->key_file, "PEM private key file");
  sign_cmd->add_option("--kid", so->kid, "Key id (required with --key; with --data-dir picks an older key)");
  sign_cmd->add_option("--data-dir", so->data_dir, "Use the hosted tenant key from this data dir")->excludes(key_opt);
  sign_cmd->add_option("--store", so->store_url, "Use the hosted tenant key from this store (postgres://..., sqlite:PATH)")
      ->excludes(key_opt);
  sign_cmd->callback([so] {
    if (so->key_file.empty() && so->data_dir.empty() && so->store_url.empty())
      throw CLI::RuntimeError("give --key, --data-dir or --store", 1);
    sign(*so);
  });

  auto vo = std::make_shared<VerifyOptions>();
  CLI::App* verify_cmd = token->add_subcommand("verify", "Verify a PRES token; prints its claims as JSON");
  verify_cmd->add_option("token", vo->token, "Compact token")->required();
  auto* pk = verify_cmd->add_option("--public-key", vo->public_key, "Standard base64 SPKI DER (as /api/me serves)");
  auto* pkf = verify_cmd->add_option("--public-key-file", vo->public_key_file, "PEM public key file")->excludes(pk);
  verify_cmd->add_option("--data-dir", vo->data_dir, "Look the key up among hosted tenants")->excludes(pk)->excludes(pkf);
  verify_cmd->add_option("--store", vo->store_url, "Look the key up among the hosted tenants of this store")
      ->excludes(pk)->excludes(pkf);
  verify_cmd->add_option("--now", vo->now, "Check freshness at this time (seconds; default now)");
  verify_cmd->add_option("--ttl", vo->ttl, "TTL seconds for freshness")->capture_default_str();
  verify_cmd->add_flag("--ignore-time", vo->ignore_time, "Skip the freshness check");
  verify_cmd->callback([vo] {
    if (vo->public_key.empty() && vo->public_key_file.empty() && vo->data_dir.empty() && vo->store_url.empty())
      throw CLI::RuntimeError("give --public-key, --public-key-file, --data-dir or --store", 1);
    verify(*vo);
  });

  struct IssueOptions {
    std::string data_dir = "./data", user, tenant, secret_file;
    std::int64_t ttl_s = 86400;
  };
  auto io = std::make_shared<IssueOptions>();
  CLI::App* issue = token->add_subcommand("issue", "Mint an HS256 client access token {iss, sub, exp}");
  issue->add_option("--data-dir", io->data_dir, "Data dir holding access.secret")->capture_default_str();
  issue->add_option("--user", io->user, "The user (sub)")->required();
  issue->add_option("--access-secret-file", io->secret_file, "Secret file (default: <data-dir>/access.secret)");
  issue->add_option("--tenant", io->tenant, "The tenant the client connects to (iss; default: the user)");
  issue->add_option("--ttl", io->ttl_s, "Lifetime in seconds")->capture_default_str()->check(CLI::Range(1, 365 * 86400));
  issue->callback([io] {
    AccessClaims c;
    c.sub = io->user;
    c.iss = io->tenant.empty() ? io->user : io->tenant;
    c.exp = SystemClock().now_s() + io->ttl_s;
    const std::string secret =
        io->secret_file.empty() ? DataDir{io->data_dir}.access_secret() : read_secret_file(io->secret_file);
    const std::string token = issue_access_token(c, secret);
    // Round-trip through the verifier so a bad id_tag is reported here, not at connect time.
    if (auto v = verify_access_token(token, secret, SystemClock().now_s()); !v) fail(v.error());
    std::cout << token << '\n';
  });
}

}  // namespace presd::app
