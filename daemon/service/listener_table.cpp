#include "daemon/service/listener_table.hpp"

#include <algorithm>
#include <stdexcept>

namespace tcpecho {

namespace {

// What makes two [[listen]] tables "the same socket": proto, address (normalised) and port.
// Port 0 asks for any free port, so there the name tells which earlier socket it was.
std::string socket_key(const ListenerConfig& c) {
    auto addr = SocketAddress::parse(c.address, c.port);
    std::string key = std::string(to_string(c.proto)) + " " + (addr ? addr->to_string() : c.address);
    if (c.port == 0) key += " " + c.name;
    return key;
}

}  // namespace

ListenerTable::ListenerTable(std::vector<InheritedSocket> inherited, unsigned workers) : workers_(workers) {
    for (InheritedSocket& s : inherited) {
        if (s.proto == Protocol::Tcp) {
            tcp_inherited_[s.name] = ListenSocket::adopt(std::move(s.fd), s.local);
        } else {
            udp_inherited_[s.name] = UdpSocketSet::adopt(s.name, std::move(s.fd), s.local);
        }
    }
}

void ListenerTable::check_serves_inherited(const Config& config) const {
    auto served = [&config](const std::string& name, Protocol proto) {
        if (proto == Protocol::Tcp && config.metrics && config.metrics->name == name) return true;
        return std::any_of(config.listeners.begin(), config.listeners.end(),
                           [&](const ListenerConfig& l) { return l.name == name && l.proto == proto; });
    };
    auto complain = [&config](const std::string& name, Protocol proto, const SocketAddress& local) {
        const std::string p(to_string(proto));
        throw ActivationError("systemd passed a " + p + " socket named \"" + name + "\" (" + local.to_string() +
                              ") but " + config.source + " has no [[listen]] table with name = \"" + name +
                              "\" and proto = \"" + p + "\"" +
                              (proto == Protocol::Tcp ? " and no [metrics] table with that name" : ""));
    };
    for (const auto& [name, socket] : tcp_inherited_) {
        if (!served(name, Protocol::Tcp)) complain(name, Protocol::Tcp, socket->local());
    }
    for (const auto& [name, sockets] : udp_inherited_) {
        if (!served(name, Protocol::Udp)) complain(name, Protocol::Udp, sockets->local());
    }
}

std::shared_ptr<ListenSocket> ListenerTable::metrics_socket(const MetricsConfig& metrics) const {
    if (socket_activated()) {
        auto it = tcp_inherited_.find(metrics.name);
        return it != tcp_inherited_.end() ? it->second : nullptr;
    }
    ListenerConfig lc;
    lc.name = metrics.name;
    lc.address = metrics.address;
    lc.port = metrics.port;
    return ListenSocket::open(lc);
}

std::shared_ptr<ListenerSet> ListenerTable::build(const Config& config) const {
    auto next = std::make_shared<ListenerSet>();
    next->generation = current_->generation + 1;
    for (const ListenerConfig& lc : config.listeners) {
        const bool tcp = lc.proto == Protocol::Tcp;
        if (socket_activated()) {
            // systemd owns the sockets: serve what it passed, bind nothing ourselves (the
            // hardened unit runs without network access of its own).
            if (tcp) {
                auto it = tcp_inherited_.find(lc.name);
                if (it != tcp_inherited_.end()) next->tcp.push_back(std::make_shared<Listener>(lc, it->second));
                else next->without_socket.push_back(lc);
            } else {
                auto it = udp_inherited_.find(lc.name);
                if (it != udp_inherited_.end()) next->udp.push_back(std::make_shared<UdpListener>(lc, it->second));
                else next->without_socket.push_back(lc);
            }
            continue;
        }
        const std::string key = socket_key(lc);
        if (tcp) {
            std::shared_ptr<ListenSocket> socket;
            for (const auto& l : current_->tcp) {
                if (socket_key(l->config()) == key) socket = l->socket();
            }
            if (!socket) socket = ListenSocket::open(lc);  // throws; `next` and its sockets go away
            next->tcp.push_back(std::make_shared<Listener>(lc, std::move(socket)));
        } else {
            std::shared_ptr<UdpSocketSet> sockets;
            for (const auto& l : current_->udp) {
                if (socket_key(l->config()) == key) sockets = l->sockets();
            }
            if (!sockets) sockets = UdpSocketSet::open(lc, workers_);
            next->udp.push_back(std::make_shared<UdpListener>(lc, std::move(sockets)));
        }
    }
    // A source on any of our UDP ports is never answered (see judge_source).
    std::vector<std::uint16_t> udp_ports;
    for (const auto& l : next->udp) udp_ports.push_back(l->local().port());
    for (const auto& l : next->udp) {
        l->set_own_ports(udp_ports);
        // Same budget as before: keep the per-source state, so a reload is no way around it.
        for (const auto& old : current_->udp) {
            if (old->sockets() == l->sockets()) l->keep_limiter_of(*old);
        }
    }
    return next;
}

std::vector<std::shared_ptr<ListenSocket>> ListenerTable::commit(const std::shared_ptr<ListenerSet>& next) {
    std::vector<std::shared_ptr<ListenSocket>> unused;
    for (const auto& old : current_->tcp) {
        const auto& socket = old->socket();
        if (socket->from_systemd()) continue;  // kept for the life of the process
        bool kept = std::any_of(next->tcp.begin(), next->tcp.end(),
                                [&](const std::shared_ptr<Listener>& l) { return l->socket() == socket; });
        if (!kept && std::find(unused.begin(), unused.end(), socket) == unused.end()) unused.push_back(socket);
    }
    current_ = next;
    return unused;
}

}  // namespace tcpecho
