// Web token verification (web/auth/token.cpp) on what a browser or curl sends as ?token= or a Bearer header,
// under a fixed secret. The input is verified as it is (a forged one fails its signature), then again
// signed with the right secret, so that the header and claims behind the signature are read too. A token
// that verifies is minted again from its claims; that one must verify to the same claims.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/auth.hpp"
#include "token_input.hpp"

namespace {

using namespace bc::auth;

constexpr std::string_view kSecret = bc::fuzz::kTokenSecret;
constexpr std::string_view kContainer = bc::fuzz::kTokenContainer;
constexpr int64_t kNow = bc::fuzz::kTokenNow;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

void check_claims(const TokenCheck& c) {
  if (c.status == TokenStatus::Valid) {
    if (c.claims.expires_at <= kNow) fail("a token past its expiry is valid");
    if (c.claims.user.empty() && c.claims.container != kContainer) fail("a token for another container is valid");
  }
}

void remint(const TokenCheck& c) {
  if (c.status != TokenStatus::Valid && c.status != TokenStatus::Expired && c.status != TokenStatus::WrongContainer)
    return;
  const TokenCheck again = verify_token(kSecret, mint_token(kSecret, c.claims), kContainer, kNow);
  if (again.status != c.status || again.claims.container != c.claims.container || again.claims.user != c.claims.user ||
      again.claims.expires_at != c.claims.expires_at || again.claims.issued_at != c.claims.issued_at)
    fail("a token minted from verified claims does not verify to the same claims");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  const TokenCheck as_sent = verify_token(kSecret, token, kContainer, kNow);
  check_claims(as_sent);
  remint(as_sent);

  const size_t last_dot = token.rfind('.');
  if (last_dot == std::string_view::npos) return 0;
  const std::string_view signing_input = token.substr(0, last_dot);
  const std::string signed_token = std::string(signing_input) + "." + sign_hs256(kSecret, signing_input);
  const TokenCheck resigned = verify_token(kSecret, signed_token, kContainer, kNow);
  if (resigned.status == TokenStatus::BadSignature) fail("a token signed with the secret fails its signature");
  check_claims(resigned);
  remint(resigned);
  // base64url both ways on the same bytes.
  const auto decoded = base64url_decode(token);
  if (decoded && base64url_decode(base64url_encode(*decoded)) != decoded) fail("base64url does not round-trip");
  return 0;
}
