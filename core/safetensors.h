// The safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes    little-endian u64 N, the length of the header
//   N bytes    JSON: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//                     "__metadata__": {"key": "value", ...}}   (metadata optional)
//   the rest   the byte buffer; offsets are relative to its start, tensors
//              are little-endian, row-major, and together cover it exactly.
// Used for checkpoints (state dicts), so they move to and from PyTorch.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace engine {

// Name -> tensor, in a meaningful order (a state dict keeps registration order).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsContents {
  NamedTensors tensors;  // CPU tensors, in the order of their data offsets
  std::map<std::string, std::string> metadata;
};

// Writes F32 and I64 tensors (from any device) to `path` atomically: the
// bytes go to "<path>.tmp.<pid>", are flushed, and the file is renamed over
// `path`, so a crash never leaves a half-written checkpoint. Names must be
// unique and non-empty.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a whole file. Rejects, with a message naming the file (and the
// tensor, where one is at fault): a missing file, a file shorter than its
// header, header JSON that does not parse, unknown dtypes, negative or
// non-integer shapes, offsets that overlap, leave holes or run past the end,
// and byte counts that do not match dtype and shape.
SafetensorsContents load_safetensors(const std::string& path);

}  // namespace engine
