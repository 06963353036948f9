// NumPy's .npy format, for handing raw arrays (generated samples, their
// labels) to evaluation scripts: np.load("samples.npy") gives back exactly
// the float32 values the engine produced, without the rounding of a PNG.
//
// Format version 1.0 (numpy.lib.format):
//   bytes 0-5   magic "\x93NUMPY"
//   bytes 6-7   version 1, 0
//   bytes 8-9   header length H, little-endian uint16
//   H bytes     an ASCII Python dict literal, padded with spaces and ended
//               by '\n' so that 10 + H is a multiple of 64:
//                 {'descr': '<f4', 'fortran_order': False, 'shape': (N, 1, 28, 28), }
//   then        the elements, row-major (C order), little-endian
// descr '<f4' is little-endian float32, '<i8' little-endian int64. A 1-d
// shape is written "(N,)", a 0-d one "()".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace engine::npy {

// The bytes of a .npy file holding `tensor` (F32 or I64, any device: it is
// copied to the host). Throws for any other dtype.
std::vector<uint8_t> encode(const Tensor& tensor);

// Writes encode(tensor) to `path` atomically (temp file + rename).
void save(const std::string& path, const Tensor& tensor);

}  // namespace engine::npy
