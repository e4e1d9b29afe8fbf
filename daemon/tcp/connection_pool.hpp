// Fixed-size slab allocator for Connection objects: no malloc header per connection and good
// locality; idle connections cost sizeof(Connection) bytes of user space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tcpecho {

class Acceptor;
class Connection;

class ConnectionPool {
public:
    ConnectionPool() noexcept;
    ~ConnectionPool();
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    [[nodiscard]] Connection* create(Acceptor& acceptor, int fd, std::uint64_t now_ms);
    void destroy(Connection* c) noexcept;

private:
    static constexpr std::size_t kPerChunk = 512;
    union Cell;
    std::vector<std::unique_ptr<Cell[]>> chunks_;
    Cell* free_ = nullptr;
};

}  // namespace tcpecho
