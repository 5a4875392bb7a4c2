// Compiles Asio's SSL implementation once for echo_bench (the project
// compiles the rest of Asio once, ASIO_SEPARATE_COMPILATION, in
// runtime/detail/asio_impl.cpp; only this benchmark uses asio::ssl).
#include <asio/ssl/impl/src.hpp>
