// The IDX file format of MNIST and Fashion-MNIST, and the datasets built on it.
//
// An IDX file (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS") is an
// n-dimensional array of bytes behind a big-endian header:
//   bytes 0-1   0x00 0x00
//   byte  2     element type: 0x08 = unsigned byte (the only one MNIST uses)
//   byte  3     rank r (number of dimensions)
//   then        r extents, each a big-endian uint32
//   then        prod(extents) elements, row-major, and nothing else
// So the first four bytes, read as one big-endian number, are the "magic
// number": 0x00000803 for an image file (unsigned bytes, rank 3: N x 28 x 28)
// and 0x00000801 for a label file (unsigned bytes, rank 1: N).
//
// Files may be plain or gzipped (*.gz); zlib's gzopen/gzread read both
// transparently. The reader is strict: a wrong magic number, an extent of
// 0, a file shorter or longer than its header announces, or a corrupt gzip
// stream is an engine::Error that names the file, what is wrong and how to
// get good data (tools/fetch_mnist.sh).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace engine::data {

// The raw contents of an IDX file of unsigned bytes.
struct IdxArray {
  std::vector<int64_t> dims;  // the extents from the header
  std::vector<uint8_t> values;  // prod(dims) bytes, row-major
};

// Reads an IDX file of unsigned bytes with `expected_rank` dimensions.
// `how_to_fetch` is appended to every error message (e.g. "run
// tools/fetch_mnist.sh to download MNIST").
IdxArray read_idx(const std::string& path, int expected_rank, const std::string& how_to_fetch);

enum class Split { train, test };
enum class DatasetName { mnist, fashion };

// A labelled image dataset, on the host.
struct Dataset {
  // float [N, 1, 28, 28], pixel byte / 255, so in [0, 1] (what
  // torchvision's ToTensor() gives).
  Tensor images;
  std::vector<int64_t> labels;  // N labels, each in 0..9
  std::string description;      // e.g. "MNIST train (60000 images) from data/mnist"

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// Where a dataset is looked for when no directory is given:
//   mnist:   $ENGINE_DATA_DIR if set, else "data/mnist" (relative to the
//            working directory; tools/fetch_mnist.sh fills it)
//   fashion: /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
std::string default_data_dir(DatasetName dataset);

// How to get the files, for error messages: "run tools/fetch_mnist.sh" or
// "apt-get install dataset-fashion-mnist".
std::string how_to_fetch(DatasetName dataset);

// Loads one split of MNIST or Fashion-MNIST from `dir` (default_data_dir
// when empty). In `dir` it looks for
//   train: train-images-idx3-ubyte, train-labels-idx1-ubyte
//   test:  t10k-images-idx3-ubyte,  t10k-labels-idx1-ubyte
// each plain or with a .gz suffix, and checks that the images are
// N x 28 x 28, that there are as many labels as images, and that every label
// is in 0..9.
Dataset load_mnist(const std::string& dir = "", Split split = Split::train, DatasetName dataset = DatasetName::mnist);

}  // namespace engine::data
