// JS error construction for NativeError (see errors.h).
#include "errors.h"

#include <cerrno>
#include <cstring>

namespace nmwasm {

static const char* errnoName(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EEXIST: return "EEXIST";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOSPC: return "ENOSPC";
    case EIO: return "EIO";
    case EBUSY: return "EBUSY";
    case EROFS: return "EROFS";
    case ENODEV: return "ENODEV";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EFBIG: return "EFBIG";
    default: return "ESYSCALL";
  }
}

void throwSyscallError(const std::string& port, const char* syscall, int err, const std::string& what,
                       const std::string& advice) {
  std::string msg = what + " failed: " + std::strerror(err) + " (" + syscall + ")";
  if (!advice.empty()) msg += "; " + advice;
  throw NativeError(errnoName(err), port, syscall, err, msg);
}

Napi::Error toJsError(Napi::Env env, const NativeError& e) {
  std::string msg = e.port.empty() ? std::string(e.what()) : "port " + e.port + ": " + e.what();
  Napi::Error error = Napi::Error::New(env, msg);
  Napi::Object obj = error.Value();
  obj.Set("code", Napi::String::New(env, e.code));
  if (!e.port.empty()) obj.Set("port", Napi::String::New(env, e.port));
  if (!e.syscall.empty()) obj.Set("syscall", Napi::String::New(env, e.syscall));
  if (e.err != 0) obj.Set("errno", Napi::Number::New(env, e.err));
  return error;
}

}  // namespace nmwasm
