// byte-proxy: a TCP proxy that re-segments the client's stream into 1-byte writes towards the
// server (TCP_NODELAY, one send() per byte, a pause now and then), so the server sees its
// frames arrive in the smallest possible pieces. The server's replies go back unchanged.
//
//   byte-proxy LISTEN_ADDR TARGET_ADDR TARGET_PORT [PAUSE_US [EVERY_BYTES]]
//
// Listens on LISTEN_ADDR, port 0, and prints "listening PORT" on stdout. One child process per
// connection; half-closes are passed on both ways. Each child prints
// "proxied up N bytes in N sends, down N bytes" on stderr when its connection ends.
// Ends on SIGTERM (its children end with their connections, or with it: SIGTERM is passed on).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

sockaddr_in make_addr(const char* host, unsigned port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        std::fprintf(stderr, "byte-proxy: bad IPv4 address %s\n", host);
        std::exit(2);
    }
    return a;
}

void set_nonblocking_nodelay(int fd) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

struct Pipe {
    std::vector<char> buf = std::vector<char>(65536);
    std::size_t head = 0;
    std::size_t tail = 0;
    bool eof = false;       // the source ended
    bool shut = false;      // passed on as shutdown(SHUT_WR)
    [[nodiscard]] bool empty() const { return head == tail; }
};

// Reads what the source has into an empty pipe. False on error.
bool fill(int from, Pipe& p) {
    const ssize_t n = ::recv(from, p.buf.data(), p.buf.size(), 0);
    if (n > 0) {
        p.head = 0;
        p.tail = static_cast<std::size_t>(n);
        return true;
    }
    if (n == 0) {
        p.eof = true;
        return true;
    }
    return errno == EAGAIN || errno == EINTR;
}

int serve(int client, const sockaddr_in& target, unsigned pause_us, unsigned every) {
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    if (server < 0 || ::connect(server, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
        std::perror("byte-proxy: connect");
        return 1;
    }
    set_nonblocking_nodelay(client);
    set_nonblocking_nodelay(server);
    Pipe up;    // client -> server, one byte per send()
    Pipe down;  // server -> client, as it comes
    std::uint64_t up_bytes = 0, up_sends = 0, down_bytes = 0;
    int rc = 0;
    for (;;) {
        if (up.eof && up.empty() && !up.shut) {
            ::shutdown(server, SHUT_WR);
            up.shut = true;
        }
        if (down.eof && down.empty() && !down.shut) {
            ::shutdown(client, SHUT_WR);
            down.shut = true;
        }
        if (up.shut && down.shut) break;
        pollfd p[2] = {{client, 0, 0}, {server, 0, 0}};
        if (up.empty() && !up.eof) p[0].events |= POLLIN;
        if (!up.empty()) p[1].events |= POLLOUT;
        if (down.empty() && !down.eof) p[1].events |= POLLIN;
        if (!down.empty()) p[0].events |= POLLOUT;
        if (::poll(p, 2, 30'000) <= 0) {
            rc = 1;  // error, or 30 s without progress
            break;
        }
        if ((p[0].revents | p[1].revents) & POLLNVAL) {
            rc = 1;
            break;
        }
        if (up.empty() && !up.eof && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !fill(client, up)) {
            rc = 1;
            break;
        }
        if (down.empty() && !down.eof && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !fill(server, down)) {
            rc = 1;
            break;
        }
        // Up to 64 single-byte sends per wake-up, so the other direction gets its turn.
        for (int i = 0; i < 64 && !up.empty(); ++i) {
            const ssize_t n = ::send(server, up.buf.data() + up.head, 1, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR) rc = 1;
                break;
            }
            ++up.head;
            ++up_bytes;
            ++up_sends;
            if (pause_us > 0 && every > 0 && up_sends % every == 0) usleep(pause_us);
        }
        if (rc != 0) break;
        while (!down.empty()) {
            const ssize_t n = ::send(client, down.buf.data() + down.head, down.tail - down.head, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR) rc = 1;
                break;
            }
            down.head += static_cast<std::size_t>(n);
            down_bytes += static_cast<std::uint64_t>(n);
        }
        if (rc != 0) break;
    }
    std::fprintf(stderr, "proxied up %llu bytes in %llu sends, down %llu bytes%s\n",
                 static_cast<unsigned long long>(up_bytes), static_cast<unsigned long long>(up_sends),
                 static_cast<unsigned long long>(down_bytes), rc != 0 ? " (ended by an error)" : "");
    ::close(server);
    ::close(client);
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || argc > 6) {
        std::fprintf(stderr, "usage: byte-proxy LISTEN_ADDR TARGET_ADDR TARGET_PORT [PAUSE_US [EVERY_BYTES]]\n");
        return 2;
    }
    const sockaddr_in listen_addr = make_addr(argv[1], 0);
    const sockaddr_in target = make_addr(argv[2], static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10)));
    const unsigned pause_us = argc > 4 ? static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10)) : 0;
    const unsigned every = argc > 5 ? static_cast<unsigned>(std::strtoul(argv[5], nullptr, 10)) : 1;

    signal(SIGCHLD, SIG_IGN);  // children are reaped by the kernel
    const int ls = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || ::bind(ls, reinterpret_cast<const sockaddr*>(&listen_addr), sizeof listen_addr) != 0 ||
        ::listen(ls, 64) != 0) {
        std::perror("byte-proxy: listen");
        return 1;
    }
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    getsockname(ls, reinterpret_cast<sockaddr*>(&bound), &len);
    std::printf("listening %u\n", ntohs(bound.sin_port));
    std::fflush(stdout);
    const pid_t parent = getpid();
    for (;;) {
        const int c = ::accept(ls, nullptr, nullptr);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            std::perror("byte-proxy: accept");
            return 1;
        }
        const pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the proxy the test started
            if (getppid() != parent) _exit(1);
            ::close(ls);
            _exit(serve(c, target, pause_us, every));
        }
        ::close(c);
    }
}
