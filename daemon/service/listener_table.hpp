// The table that builds the next generation of listeners (daemon/listener_set.hpp) from a
// configuration, at start-up and on every reload.
//
// Building reuses what can be reused, so a reload never drops a queued connection or
// datagram: a [[listen]] table with the same proto, address and port as a current one keeps
// that socket (its mode and limits may change); with socket activation, the socket systemd
// passed under the table's name and proto. Everything else is opened anew — all before the
// new generation is committed, so a failure leaves the running one untouched.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/base/config.hpp"
#include "daemon/listener_set.hpp"
#include "daemon/service/socket_activation.hpp"

namespace tcpecho {

class ListenerTable {
public:
    // `inherited`: the sockets systemd passed (empty without socket activation); `workers`:
    // UDP sockets per listener we bind ourselves.
    ListenerTable(std::vector<InheritedSocket> inherited, unsigned workers);

    [[nodiscard]] bool socket_activated() const noexcept { return !tcp_inherited_.empty() || !udp_inherited_.empty(); }

    // Every socket systemd passed must be served: throws ActivationError naming the first
    // one `config` has no [[listen]] table for (same name and proto).
    void check_serves_inherited(const Config& config) const;

    // The metrics endpoint's socket: with socket activation the one systemd passed under
    // `metrics.name` (nullptr if none), else bound now. Throws std::runtime_error when it
    // cannot be opened.
    [[nodiscard]] std::shared_ptr<ListenSocket> metrics_socket(const MetricsConfig& metrics) const;

    // The generation serving `config`. Throws std::runtime_error when a socket cannot be
    // opened; the sockets opened so far are closed again and nothing current changes.
    [[nodiscard]] std::shared_ptr<ListenerSet> build(const Config& config) const;

    // Makes `next` current. Returns the TCP sockets it no longer uses: close them once every
    // worker has stopped watching them (UDP sockets are closed by their worker).
    std::vector<std::shared_ptr<ListenSocket>> commit(const std::shared_ptr<ListenerSet>& next);

    [[nodiscard]] const std::shared_ptr<ListenerSet>& current() const noexcept { return current_; }

private:
    unsigned workers_;
    std::map<std::string, std::shared_ptr<ListenSocket>> tcp_inherited_;   // by name
    std::map<std::string, std::shared_ptr<UdpSocketSet>> udp_inherited_;  // by name
    std::shared_ptr<ListenerSet> current_ = std::make_shared<ListenerSet>();
};

}  // namespace tcpecho
