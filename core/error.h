// Errors: every public entry point checks its arguments and throws an
// engine::Error whose message names the op, the argument, what was expected
// and what was found, e.g.
//   conv2d: argument 'weight': expected 4-d tensor [C_out, C_in, KH, KW], got shape [3, 3]
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace engine {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat_message(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

// ENGINE_CHECK(cond, "op: argument 'x': expected ..., got ", shape_str(s));
// The message parts are only evaluated when the check fails.
#define ENGINE_CHECK(cond, ...)                                                   \
  do {                                                                            \
    if (!(cond)) throw ::engine::Error(::engine::detail::concat_message(__VA_ARGS__)); \
  } while (0)

// For the engine's own invariants (a bug here, not a user error): names file:line.
#define ENGINE_ASSERT(cond)                                                                  \
  do {                                                                                       \
    if (!(cond))                                                                             \
      throw ::engine::Error(::engine::detail::concat_message(                                \
          "internal error: ", #cond, " failed at ", __FILE__, ":", __LINE__));               \
  } while (0)

}  // namespace engine
