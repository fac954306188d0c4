#include <munge.h>
#include <pwd.h>

#include <cstdlib>
#include <memory>

#include "common/auth.hpp"

namespace bc::auth {
namespace {

using Ctx = std::unique_ptr<std::remove_pointer_t<munge_ctx_t>, void (*)(munge_ctx_t)>;

Ctx make_ctx(const std::string& socket) {
  Ctx ctx(munge_ctx_create(), munge_ctx_destroy);
  if (ctx && !socket.empty()) munge_ctx_set(ctx.get(), MUNGE_OPT_SOCKET, socket.c_str());
  return ctx;
}

}  // namespace

std::string user_name(uint32_t uid) {
  passwd pw{};
  passwd* result = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result) return pw.pw_name;
  return std::to_string(uid);
}

std::optional<std::string> munge_encode(std::string_view payload, const std::string& socket, std::string& error) {
  Ctx ctx = make_ctx(socket);
  if (!ctx) {
    error = "cannot create a munge context";
    return std::nullopt;
  }
  char* cred = nullptr;
  munge_err_t rc = ::munge_encode(&cred, ctx.get(), payload.data(), static_cast<int>(payload.size()));
  std::unique_ptr<char, void (*)(void*)> owned(cred, std::free);
  if (rc != EMUNGE_SUCCESS) {
    error = std::string("munge: ") + munge_ctx_strerror(ctx.get());
    return std::nullopt;
  }
  return std::string(cred);
}

MungeResult munge_decode(std::string_view credential, const std::string& socket) {
  MungeResult result;
  Ctx ctx = make_ctx(socket);
  if (!ctx) {
    result.status = MungeStatus::Unavailable;
    result.message = "cannot create a munge context";
    return result;
  }
  std::string cred(credential);
  void* payload = nullptr;
  int length = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  munge_err_t rc = ::munge_decode(cred.c_str(), ctx.get(), &payload, &length, &uid, &gid);
  std::unique_ptr<void, void (*)(void*)> owned(payload, std::free);
  switch (rc) {
    case EMUNGE_SUCCESS: result.status = MungeStatus::Ok; break;
    case EMUNGE_CRED_REPLAYED: result.status = MungeStatus::Replayed; break;
    case EMUNGE_CRED_EXPIRED:
    case EMUNGE_CRED_REWOUND: result.status = MungeStatus::Expired; break;
    case EMUNGE_SOCKET:
    case EMUNGE_NO_MEMORY: result.status = MungeStatus::Unavailable; break;
    case EMUNGE_CRED_INVALID:
    case EMUNGE_BAD_CRED:
    case EMUNGE_CRED_UNAUTHORIZED: result.status = MungeStatus::Invalid; break;
    default: result.status = MungeStatus::Other; break;
  }
  if (rc != EMUNGE_SUCCESS) {
    result.message = std::string("munge: ") + munge_ctx_strerror(ctx.get());
    return result;
  }
  result.uid = uid;
  result.gid = gid;
  if (payload && length > 0) result.payload.assign(static_cast<const char*>(payload), static_cast<size_t>(length));
  return result;
}

}  // namespace bc::auth
