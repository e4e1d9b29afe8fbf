#include "daemon/service/socket_activation.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstdlib>

namespace tcpecho {

namespace {

int socket_option(int fd, int option) {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0) return -1;
    return value;
}

std::string fd_label(int fd, const std::string& name) {
    return "socket fd " + std::to_string(fd) + " named \"" + name + "\" passed by systemd";
}

}  // namespace

std::vector<InheritedSocket> take_inherited_sockets() {
    char** names = nullptr;
    // unset_environment=1: nothing we might start later should think the sockets are its own.
    int n = ::sd_listen_fds_with_names(1, &names);
    if (n < 0) throw ActivationError("sd_listen_fds_with_names: " + errno_text(-n));
    std::vector<InheritedSocket> out;
    std::string problem;
    for (int i = 0; i < n; ++i) {
        int fd = SD_LISTEN_FDS_START + i;
        std::string name = names != nullptr && names[i] != nullptr ? names[i] : "unknown";
        UniqueFd owned(fd);  // closed if we do not serve it
        if (!problem.empty()) continue;
        int domain = socket_option(fd, SO_DOMAIN);
        int type = socket_option(fd, SO_TYPE);
        if (domain != AF_INET && domain != AF_INET6) {
            problem = fd_label(fd, name) + " is not an IPv4 or IPv6 socket (ListenStream=/ListenDatagram= with an address or port)";
            continue;
        }
        if (type != SOCK_STREAM && type != SOCK_DGRAM) {
            problem = fd_label(fd, name) + " is neither a stream nor a datagram socket";
            continue;
        }
        if (type == SOCK_STREAM && socket_option(fd, SO_ACCEPTCONN) != 1) {
            problem = fd_label(fd, name) + " is a stream socket that is not listening (Accept=yes is not supported)";
            continue;
        }
        int err = 0;
        auto local = SocketAddress::local_of(fd, &err);
        // Edge-triggered epoll and shared accept need non-blocking sockets; systemd passes
        // them blocking unless the unit says otherwise.
        if (err == 0) {
            const int flags = ::fcntl(fd, F_GETFL);
            err = sys_error(flags);
            if (err == 0) err = sys_error(::fcntl(fd, F_SETFL, flags | O_NONBLOCK));
            if (err == 0) err = sys_error(::fcntl(fd, F_SETFD, FD_CLOEXEC));
        }
        if (err != 0) {
            problem = fd_label(fd, name) + ": " + errno_text(err);
            continue;
        }
        Protocol proto = type == SOCK_STREAM ? Protocol::Tcp : Protocol::Udp;
        for (const InheritedSocket& s : out) {
            if (s.name == name && s.proto == proto) {
                problem = fd_label(fd, name) + ": a second " + std::string(to_string(proto)) +
                          " socket with that name (one [[listen]] table serves one socket; give each "
                          "socket unit its own FileDescriptorName=)";
            }
        }
        if (!problem.empty()) continue;
        out.push_back(InheritedSocket{name, proto, *local, std::move(owned)});
    }
    if (names != nullptr) {
        for (int i = 0; i < n; ++i) std::free(names[i]);
        std::free(names);
    }
    if (!problem.empty()) throw ActivationError(problem);
    return out;
}

}  // namespace tcpecho
