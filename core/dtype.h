// Element types. The engine computes in float32; int64 exists so that
// PyTorch state dicts (BatchNorm's num_batches_tracked) round-trip.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace engine {

enum class DType { F32, I64 };

inline std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

// Names as safetensors spells them.
inline std::string dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::I64: return "I64";
  }
  return "?";
}

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };

}  // namespace engine
