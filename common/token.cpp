#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cmath>
#include <memory>

#include "common/auth.hpp"
#include "common/json.hpp"

namespace bc::auth {
namespace {

using JsonPtr = json::Ptr;

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string print_compact(cJSON* json) {
  std::unique_ptr<char, void (*)(void*)> text(cJSON_PrintUnformatted(json), cJSON_free);
  return text ? std::string(text.get()) : std::string();
}

TokenCheck fail(TokenStatus status, std::string message) {
  TokenCheck c;
  c.status = status;
  c.message = std::move(message);
  return c;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string b64(text);
  for (char& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (c == '+' || c == '/' || c == '=') return std::nullopt;  // not base64url
  }
  if (b64.size() % 4 == 1) return std::nullopt;
  size_t pad = (4 - b64.size() % 4) % 4;
  b64.append(pad, '=');
  std::string out(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<size_t>(n) - pad);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

std::string sign_hs256(std::string_view secret, std::string_view signing_input) {
  return base64url_encode(hmac_sha256(secret, signing_input));
}

std::string mint_token(std::string_view secret, const TokenClaims& claims) {
  JsonPtr header(cJSON_CreateObject()), payload(cJSON_CreateObject());
  cJSON_AddStringToObject(header.get(), "alg", "HS256");
  cJSON_AddStringToObject(header.get(), "typ", "JWT");
  if (claims.user.empty()) cJSON_AddStringToObject(payload.get(), "container", claims.container.c_str());
  else cJSON_AddStringToObject(payload.get(), "user", claims.user.c_str());
  // As whole numbers: cJSON prints a double with 15 digits when that reads back within its epsilon, so an exp
  // beyond 2^53 (a verified 180000006000000032) would come back changed.
  cJSON_AddRawToObject(payload.get(), "exp", std::to_string(claims.expires_at).c_str());
  cJSON_AddRawToObject(payload.get(), "iat", std::to_string(claims.issued_at).c_str());
  std::string signing_input =
      base64url_encode(print_compact(header.get())) + "." + base64url_encode(print_compact(payload.get()));
  return signing_input + "." + sign_hs256(secret, signing_input);
}

TokenCheck verify_token(std::string_view secret, std::string_view token, std::string_view container, int64_t now) {
  size_t first = token.find('.');
  size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return fail(TokenStatus::Malformed, "the token is not a JWT (three dot-separated parts)");
  auto header_text = base64url_decode(token.substr(0, first));
  if (!header_text) return fail(TokenStatus::Malformed, "the token is not valid base64url");
  JsonPtr header(cJSON_ParseWithLength(header_text->data(), header_text->size()));
  const cJSON* alg = header ? cJSON_GetObjectItemCaseSensitive(header.get(), "alg") : nullptr;
  // Only HS256: "none" and other algorithms are refused, whatever the token claims.
  if (!cJSON_IsString(alg) || std::string_view(alg->valuestring) != "HS256")
    return fail(TokenStatus::Malformed, "the token's algorithm is not HS256");
  // Compared as canonical text: the last base64url character of a 32-byte MAC has two unused bits, and
  // decoding first would accept variants of one signature.
  const std::string_view signature = token.substr(second + 1);
  const std::string expected = sign_hs256(secret, token.substr(0, second));
  if (signature.size() != expected.size() || CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0)
    return fail(TokenStatus::BadSignature, "the token's signature does not match (tampered, or another secret)");
  auto payload_text = base64url_decode(token.substr(first + 1, second - first - 1));
  JsonPtr payload(payload_text ? cJSON_ParseWithLength(payload_text->data(), payload_text->size()) : nullptr);
  const cJSON* sub = payload ? cJSON_GetObjectItemCaseSensitive(payload.get(), "container") : nullptr;
  const cJSON* exp = payload ? cJSON_GetObjectItemCaseSensitive(payload.get(), "exp") : nullptr;
  const cJSON* iat = payload ? cJSON_GetObjectItemCaseSensitive(payload.get(), "iat") : nullptr;
  const cJSON* user = payload ? cJSON_GetObjectItemCaseSensitive(payload.get(), "user") : nullptr;
  const bool user_token = cJSON_IsString(user) && *user->valuestring && !sub;
  if ((!cJSON_IsString(sub) && !user_token) || !cJSON_IsNumber(exp))
    return fail(TokenStatus::Malformed, "the token lacks its container (or user) or expiry claim");
  // Seconds a 64-bit integer holds (a double outside that range has no integer to be cast to): 2^62.
  constexpr double kMaxSeconds = 4611686018427387904.0;
  const auto in_range = [&](const cJSON* n) { return std::fabs(n->valuedouble) < kMaxSeconds; };
  if (!in_range(exp) || (cJSON_IsNumber(iat) && !in_range(iat)))
    return fail(TokenStatus::Malformed, "the token's times are out of range");
  TokenCheck check;
  if (user_token) check.claims.user = user->valuestring;
  else check.claims.container = sub->valuestring;
  check.claims.expires_at = static_cast<int64_t>(exp->valuedouble);
  check.claims.issued_at = cJSON_IsNumber(iat) ? static_cast<int64_t>(iat->valuedouble) : 0;
  if (now >= check.claims.expires_at) {
    check.status = TokenStatus::Expired;
    check.message = "the token has expired; ask for a new link";
  } else if (!user_token && check.claims.container != container) {
    check.status = TokenStatus::WrongContainer;
    check.message = "the token is for " + check.claims.container + ", not " + std::string(container);
  } else {
    check.status = TokenStatus::Valid;
  }
  return check;
}

std::string new_api_key() {
  unsigned char random[32];
  if (RAND_bytes(random, sizeof random) != 1) return {};
  return "bck_" + base64url_encode(std::string_view(reinterpret_cast<char*>(random), sizeof random));
}

std::string hash_api_key(std::string_view key) { return sha256_hex(key); }

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

bool api_key_matches(std::string_view key, std::string_view stored_hash) {
  std::string h = hash_api_key(key);
  return h.size() == stored_hash.size() && CRYPTO_memcmp(h.data(), stored_hash.data(), h.size()) == 0;
}

}  // namespace bc::auth
