#include "sign.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "keys/key_ring.h"
#include "store/sqlite_store.h"
#include "token/base64.h"
#include "token/pres_token.h"

namespace loadgen {
namespace {

presd::PresClaims claims_for(const SignOptions& o, const presd::TenantKey& key, std::size_t i, std::int64_t iat) {
  presd::PresClaims c;
  c.iss = o.tenant;
  c.k = key.key_id;
  c.subtype = o.subtypes ? "S" + std::to_string(i % o.subtypes) : "TYPING";
  c.sub = o.context;
  c.content_json = "{\"n\":" + std::to_string(i) + ",\"p\":\"" + std::string(o.pad, 'x') + "\"}";
  c.iat = iat;
  return c;
}

}  // namespace

int sign_tokens(const SignOptions& o) {
  presd::SqliteStore store(o.data_dir + "/presd.db");
  presd::KeyRing keys(store);
  if (auto s = keys.load(); !s) throw std::runtime_error("loading keys: " + s.error().message);
  const presd::TenantKey* key = keys.signing_key(o.tenant);
  if (!key) throw std::runtime_error("tenant " + o.tenant + " is not hosted in " + o.data_dir);
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::int64_t iat = o.iat ? o.iat : now;

  std::vector<std::string> tokens;
  if (o.reject_set) {
    // The rejection mix, sent in a cycle against a server whose issuer quota is spent by the
    // first token: #0 is accepted once then a duplicate, #1 is over the issuer's rate limit,
    // #2 has an HS384 header (syntax), #3 is 2 h old (freshness). None reaches a verify.
    tokens.push_back(presd::sign_pres_token(claims_for(o, *key, 0, iat), key->private_key));
    tokens.push_back(presd::sign_pres_token(claims_for(o, *key, 1, iat), key->private_key));
    std::string bad = tokens[0];
    bad.replace(0, bad.find('.'), presd::b64::encode_url(R"({"typ":"JWT","alg":"HS384"})"));
    tokens.push_back(bad);
    tokens.push_back(presd::sign_pres_token(claims_for(o, *key, 3, now - 7200), key->private_key));
  } else {
    tokens.resize(o.count);
    std::vector<std::thread> workers;
    const unsigned n = std::max(1u, o.threads);
    for (unsigned t = 0; t < n; ++t)
      workers.emplace_back([&, t] {
        for (std::size_t i = t; i < o.count; i += n)
          tokens[i] = presd::sign_pres_token(claims_for(o, *key, i, iat), key->private_key);
      });
    for (auto& w : workers) w.join();
  }
  std::ofstream out(o.out);
  for (const auto& t : tokens) out << t << '\n';
  if (!out) throw std::runtime_error("writing " + o.out);
  std::printf("signed %zu tokens into %s (iat %lld)\n", tokens.size(), o.out.c_str(), static_cast<long long>(iat));
  return 0;
}

}  // namespace loadgen
