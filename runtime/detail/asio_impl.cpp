// Compiles Asio's implementation once (ASIO_SEPARATE_COMPILATION).
#include <asio/impl/src.hpp>
