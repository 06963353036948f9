// .npy writer; the format is described in npy.h.
#include "apps/common/npy.h"

#include <bit>

#include "apps/common/png.h"  // image::write_file_atomically

namespace engine::npy {
namespace {

// The header dict, padded so that the data starts at a multiple of 64 bytes.
std::string header_text(const char* descr, const Shape& shape) {
  std::string dims;
  for (size_t d = 0; d < shape.size(); ++d) dims += (d > 0 ? ", " : "") + std::to_string(shape[d]);
  if (shape.size() == 1) dims += ",";  // Python's one-element tuple: (N,)
  std::string text = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
  while ((preamble + text.size() + 1) % 64 != 0) text += ' ';
  return text + '\n';
}

void append_little_endian(std::vector<uint8_t>& out, const void* data, size_t bytes) {
  // x86-64 and every CUDA host are little-endian: the bytes go out as they are.
  static_assert(std::endian::native == std::endian::little, "the .npy writer assumes a little-endian host");
  const auto* begin = static_cast<const uint8_t*>(data);
  out.insert(out.end(), begin, begin + bytes);
}

}  // namespace

std::vector<uint8_t> encode(const Tensor& tensor) {
  ENGINE_CHECK(tensor.defined(), "npy::encode: argument 'tensor': expected a defined tensor");
  ENGINE_CHECK(tensor.dtype() == DType::F32 || tensor.dtype() == DType::I64,
               "npy::encode: argument 'tensor': expected an F32 or I64 tensor, got ", dtype_name(tensor.dtype()));
  const bool is_float = tensor.dtype() == DType::F32;
  const std::string header = header_text(is_float ? "<f4" : "<i8", tensor.shape());
  ENGINE_CHECK(header.size() <= 65535, "npy::encode: the header of shape ", shape_str(tensor.shape()),
               " does not fit format version 1.0");

  const uint8_t preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,  // magic, version 1.0
                                static_cast<uint8_t>(header.size() & 0xff), static_cast<uint8_t>(header.size() >> 8)};
  std::vector<uint8_t> out;
  out.reserve(sizeof(preamble) + header.size() + tensor.nbytes());
  append_little_endian(out, preamble, sizeof(preamble));
  append_little_endian(out, header.data(), header.size());
  if (is_float) {
    const std::vector<float> values = tensor.to_vector();
    append_little_endian(out, values.data(), values.size() * sizeof(float));
  } else {
    const std::vector<int64_t> values = tensor.to_vector_i64();
    append_little_endian(out, values.data(), values.size() * sizeof(int64_t));
  }
  return out;
}

void save(const std::string& path, const Tensor& tensor) { image::write_file_atomically(path, encode(tensor)); }

}  // namespace engine::npy
