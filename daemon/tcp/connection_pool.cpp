#include "daemon/tcp/connection_pool.hpp"

#include <new>

#include "daemon/tcp/connection.hpp"

namespace tcpecho {

union ConnectionPool::Cell {
    Cell() {}
    ~Cell() {}
    Cell* next;
    alignas(Connection) unsigned char storage[sizeof(Connection)];
};

ConnectionPool::ConnectionPool() noexcept = default;
ConnectionPool::~ConnectionPool() = default;

Connection* ConnectionPool::create(Acceptor& acceptor, int fd, std::uint64_t now_ms) {
    if (free_ == nullptr) {
        auto chunk = std::make_unique<Cell[]>(kPerChunk);
        for (std::size_t i = 0; i < kPerChunk; ++i) {
            chunk[i].next = free_;
            free_ = &chunk[i];
        }
        chunks_.push_back(std::move(chunk));
    }
    Cell* cell = free_;
    free_ = cell->next;
    return new (cell->storage) Connection(acceptor, fd, now_ms);
}

void ConnectionPool::destroy(Connection* c) noexcept {
    c->~Connection();
    auto* cell = reinterpret_cast<Cell*>(c);
    cell->next = free_;
    free_ = cell;
}

}  // namespace tcpecho
