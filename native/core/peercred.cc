// peerCred(fd): the credentials of the process at the other end of a connected UNIX
// socket (SO_PEERCRED), for the control socket's access check (host/control/control-server.ts).
// Node has no API for it. Control path only: called once per accepted connection.
#include <sys/socket.h>
#include <cerrno>
#include <cstring>

#include "core/addon.h"
#include "core/errors.h"

namespace nmwasm {

// peerCred(fd: number) -> {pid, uid, gid}; throws {code, syscall: 'getsockopt', errno}
// when fd is not a connected UNIX socket. The fd is checked by the caller (an integer >= 0).
Napi::Value peerCredJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardEntry(env, [&]() -> Napi::Value {
    int fd = info[0].As<Napi::Number>().Int32Value();
    struct ucred cred;
    std::memset(&cred, 0, sizeof cred);
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      throwSyscallError("", "getsockopt", errno, "reading the control client's credentials (SO_PEERCRED)",
                        "the connection is refused; reconnect");
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("pid", Napi::Number::New(env, cred.pid));
    out.Set("uid", Napi::Number::New(env, cred.uid));
    out.Set("gid", Napi::Number::New(env, cred.gid));
    return out;
  });
}

}  // namespace nmwasm
