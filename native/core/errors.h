// Errors of the native addon. Internal code throws NativeError (control paths
// only: open, attach, map; never per packet); every N-API entry point runs its
// body in guardEntry, which turns any exception into a thrown JS Error carrying
// {code, port, syscall, errno}.
//
// Shutdown rule: an entry point may be running while its environment terminates
// (worker.terminate() from another thread). N-API calls then fail, and a C++
// exception leaving an entry point would call std::terminate and abort the whole
// process. So guardEntry never lets an exception out: it throws into JS with the
// plain C API, checks every status, and gives up silently when the environment can
// no longer run JavaScript. (binding.gyp also defines
// NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS so node-addon-api's own wrappers, e.g.
// ObjectWrap's unwrap, behave the same way.)
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

  /** `message` must not repeat the port name: the JS message is "port <port>: <message>".
   * It is one line and says what to do. */
  NativeError(std::string code, std::string port, std::string syscall, int err, const std::string& message)
      : std::runtime_error(message), code(std::move(code)), port(std::move(port)), syscall(std::move(syscall)), err(err) {}
};

/** Throws NativeError for a failed system call: code = errno name (e.g. 'EMFILE'),
 * message = "<what> failed: <strerror> (<syscall>); <advice>". */
[[noreturn]] void throwSyscallError(const std::string& port, const char* syscall, int err, const std::string& what,
                                    const std::string& advice);

/** The JS message of `e`: "port <port>: <message>" (or the message alone), on one line. */
std::string jsMessageOf(const NativeError& e);

/** Throws `e` into JS as an Error with code, port, syscall and errno fields. Never throws in
 * C++: does nothing if an exception is already pending or the environment is terminating. */
void throwJsError(napi_env env, const NativeError& e) noexcept;

/** Re-throws an error node-addon-api raised (a failed N-API call) into JS; same rules. */
void throwJsError(napi_env env, const Napi::Error& e) noexcept;

/** Runs `body` (returning a Napi::Value); any exception escaping it becomes a thrown JS
 * Error and an empty value is returned. Use at every N-API entry point. Never throws. */
template <typename Body>
Napi::Value guardEntry(Napi::Env env, Body&& body) noexcept {
  try {
    try {
      return body();
    } catch (const NativeError& e) {
      throwJsError(env, e);
    } catch (const Napi::Error& e) {
      throwJsError(env, e);
    } catch (const std::bad_alloc&) {
      throwJsError(env, NativeError("ENOMEM", "", "", 0, "out of memory in the native addon: lower --slots or the number of ports"));
    } catch (const std::exception& e) {
      throwJsError(env, NativeError("EINTERNAL", "", "", 0, std::string("internal error in the native addon: ") + e.what() +
                                                               "; please report it with the command line that caused it"));
    } catch (...) {
      throwJsError(env, NativeError("EINTERNAL", "", "", 0, "internal error in the native addon (unknown exception); please report it with the command line that caused it"));
    }
  } catch (...) {
    // NB: building a message can itself throw (bad_alloc); nothing may leave this function.
  }
  return Napi::Value();
}

}  // namespace nmwasm
