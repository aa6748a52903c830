// Errors of the native addon. Internal code throws NativeError (control paths
// only: open, attach, map; never per packet); every N-API entry point catches
// it and rethrows it as a JS Error carrying {code, port, syscall, errno}.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace nmwasm {

struct NativeError : std::runtime_error {
  std::string code;     // 'ENOENT', 'EPCAP_TRUNCATED', 'EINVAL', ...
  std::string port;     // port name the error is about, "" if none
  std::string syscall;  // failing system call, "" if none
  int err;              // errno, 0 if none

  NativeError(std::string code, std::string port, std::string syscall, int err, const std::string& message)
      : std::runtime_error(message), code(std::move(code)), port(std::move(port)), syscall(std::move(syscall)), err(err) {}
};

/** Throws NativeError for a failed system call: code = errno name (e.g. 'EMFILE'),
 * message = "<what> failed: <strerror> (<syscall>); <advice>". */
[[noreturn]] void throwSyscallError(const std::string& port, const char* syscall, int err, const std::string& what,
                                    const std::string& advice);

/** Builds the JS Error (message + code, port, syscall, errno fields) for `e`. */
Napi::Error toJsError(Napi::Env env, const NativeError& e);

/** Runs `body`; a NativeError or std::exception escaping it becomes a thrown JS Error.
 * Use at every N-API entry point. */
template <typename Body>
auto guardEntry(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const NativeError& e) {
    throw toJsError(env, e);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw toJsError(env, NativeError("ENOMEM", "", "", 0, "out of memory in the native addon: lower --slots or the number of ports"));
  } catch (const std::exception& e) {
    throw toJsError(env, NativeError("EINTERNAL", "", "", 0, std::string("internal error in the native addon: ") + e.what() +
                                                                  "; please report it with the command line that caused it"));
  }
}

}  // namespace nmwasm
