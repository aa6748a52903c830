// JS error construction for NativeError (see errors.h). Plain C N-API with every
// status checked: this code also runs while a worker's environment terminates.
#include "core/errors.h"

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

std::string jsMessageOf(const NativeError& e) {
  std::string msg = e.what();
  // One line: a message built from file contents or strerror must not break the CLI's line.
  for (char& ch : msg)
    if (ch == '\n' || ch == '\r') ch = ' ';
  if (e.port.empty()) return msg;
  // NB: a message that already starts with "<port>: " (a backend quoting its own name)
  // keeps one copy of it.
  const std::string own = e.port + ": ";
  if (msg.compare(0, own.size(), own) == 0) msg.erase(0, own.size());
  return "port " + e.port + ": " + msg;
}

namespace {

/** False when an exception is already pending or the env is terminating (checked by the caller's napi_throw). */
bool canThrow(napi_env env) {
  bool pending = false;
  return napi_is_exception_pending(env, &pending) == napi_ok && !pending;
}

bool setString(napi_env env, napi_value obj, const char* key, const std::string& value) {
  napi_value v;
  return napi_create_string_utf8(env, value.data(), value.size(), &v) == napi_ok && napi_set_named_property(env, obj, key, v) == napi_ok;
}

}  // namespace

void throwJsError(napi_env env, const NativeError& e) noexcept {
  try {
    if (!canThrow(env)) return;
    const std::string msg = jsMessageOf(e);
    napi_value message, error;
    if (napi_create_string_utf8(env, msg.data(), msg.size(), &message) != napi_ok) return;
    if (napi_create_error(env, nullptr, message, &error) != napi_ok) return;
    // NB: napi_set_named_property fails once the env is terminating: give up, never throw.
    if (!setString(env, error, "code", e.code)) return;
    if (!e.port.empty() && !setString(env, error, "port", e.port)) return;
    if (!e.syscall.empty() && !setString(env, error, "syscall", e.syscall)) return;
    if (e.err != 0) {
      napi_value n;
      if (napi_create_int32(env, e.err, &n) != napi_ok || napi_set_named_property(env, error, "errno", n) != napi_ok) return;
    }
    napi_throw(env, error);  // fails only while terminating: nothing to report to then
  } catch (...) {
  }
}

void throwJsError(napi_env env, const Napi::Error& e) noexcept {
  try {
    if (!canThrow(env)) return;
    napi_value value = e.Value();
    if (value != nullptr) napi_throw(env, value);
  } catch (...) {
  }
}

}  // namespace nmwasm
