// Shapes are plain vectors of extents; every tensor is contiguous (row-major).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace engine {

using Shape = std::vector<int64_t>;

// "[128, 64, 28, 28]"; "[]" for a scalar.
std::string shape_str(const Shape& shape);

// Product of the extents (1 for a scalar).
int64_t shape_numel(const Shape& shape);

}  // namespace engine
