// Authentication building blocks for the central daemon bcd: web tokens (JWT, HS256), API keys for pushers
// without munge, and munge credentials. Each returns what went wrong as a value; nothing here throws on a
// bad credential.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bc::auth {

// ---- Web tokens: JWT-compatible, HMAC-SHA256 over base64url(header).base64url(claims) ----

struct TokenClaims {
  std::string container;   // what the token opens: "job_42" or a Docker container id
  int64_t expires_at = 0;  // epoch seconds ("exp")
  int64_t issued_at = 0;   // epoch seconds ("iat")
  // A user token ("user" claim, no container) stands for that user in the browser: the job list and every
  // job bcd would show that user over munge (all jobs for an admin).
  std::string user;
};

std::string mint_token(std::string_view secret, const TokenClaims& claims);
// base64url(HMAC-SHA256(secret, signing_input)): the JWS HS256 signature.
std::string sign_hs256(std::string_view secret, std::string_view signing_input);

enum class TokenStatus { Valid, Malformed, BadSignature, Expired, WrongContainer };
struct TokenCheck {
  TokenStatus status = TokenStatus::Malformed;
  TokenClaims claims;   // filled once the signature checked out
  std::string message;  // for the error page / 401 body
};
// container: the one being opened; a job token must name exactly it. A user token is valid for any container
// (the caller then applies that user's rights).
TokenCheck verify_token(std::string_view secret, std::string_view token, std::string_view container, int64_t now);

// ---- API keys: shown once, stored only as a SHA-256 hash ----

std::string new_api_key();                       // "bck_" + 43 base64url characters (256 random bits)
std::string hash_api_key(std::string_view key);  // lowercase hex SHA-256
// Lowercase hex SHA-256; also what a pusher puts in its munge credential, binding it to one request body.
std::string sha256_hex(std::string_view bytes);
bool api_key_matches(std::string_view key, std::string_view stored_hash);  // constant time

// ---- munge ----

enum class MungeStatus { Ok, Invalid, Replayed, Expired, Unavailable, Other };
struct MungeResult {
  MungeStatus status = MungeStatus::Other;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string payload;
  std::string message;
};

// socket: munged's socket; empty means munge's default.
std::optional<std::string> munge_encode(std::string_view payload, const std::string& socket, std::string& error);
// Decoding relies on munged's own checks: key, expiry, and replay (a credential decodes once).
MungeResult munge_decode(std::string_view credential, const std::string& socket);

// The user name of a uid, or the number as text when it has none.
std::string user_name(uint32_t uid);

// Helpers shared with the web side.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace bc::auth
