// IDX reader (plain or gzipped, through zlib) and the MNIST / Fashion-MNIST
// loader. See idx.h for the format.
#include "apps/common/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace engine::data {

namespace {

// An open gzFile that closes itself.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : file_(gzopen(path.c_str(), "rb")) {
    if (file_ != nullptr) gzbuffer(file_, 1 << 20);  // 1 MiB: fewer, larger reads
  }
  ~GzFile() {
    if (file_ != nullptr) gzclose(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  bool is_open() const { return file_ != nullptr; }

  // Reads up to `count` bytes into `out`; returns how many were read (fewer
  // only at the end of the data). A decompression error throws, with
  // `where` prefixed to the message.
  size_t read(uint8_t* out, size_t count, const std::string& where) {
    size_t done = 0;
    while (done < count) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(count - done, size_t{1} << 30));
      const int got = gzread(file_, out + done, chunk);
      if (got < 0) throw Error(where + "corrupt gzip data (" + error_message() + ")");
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    // zlib reports a gzip stream cut short as an error after returning the
    // bytes it could decompress.
    int code = Z_OK;
    gzerror(file_, &code);
    if (code != Z_OK && code != Z_STREAM_END) throw Error(where + "corrupt gzip data (" + error_message() + ")");
    return done;
  }

 private:
  std::string error_message() {
    int code = Z_OK;
    const char* message = gzerror(file_, &code);
    return message != nullptr && *message != '\0' ? message : "zlib error " + std::to_string(code);
  }
  gzFile file_;
};

std::string hex32(uint32_t value) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "0x%08X", value);
  return buffer;
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_rank, const std::string& how_to_fetch) {
  ENGINE_CHECK(expected_rank >= 1 && expected_rank <= 255, "read_idx: expected_rank must be in [1, 255], got ",
               expected_rank);
  // Every message: IDX file '<path>': <what is wrong>; <how to get good data>.
  const std::string where = "IDX file '" + path + "': ";
  auto fail = [&](const std::string& problem) { return Error(where + problem + "; " + how_to_fetch); };

  std::error_code ignored;
  if (!std::filesystem::is_regular_file(path, ignored)) throw fail("no such file");
  GzFile file(path);
  if (!file.is_open()) throw fail("cannot open it for reading");

  // Magic number: 0x00 0x00 <type> <rank>.
  uint8_t magic[4];
  const size_t magic_read = file.read(magic, 4, where);
  if (magic_read < 4)
    throw fail("only " + std::to_string(magic_read) + " bytes long, too short for the 4-byte IDX magic number");
  const uint32_t magic_number = (uint32_t{magic[0]} << 24) | (uint32_t{magic[1]} << 16) |
                                (uint32_t{magic[2]} << 8) | uint32_t{magic[3]};
  const uint32_t expected_magic = 0x0800u | static_cast<uint32_t>(expected_rank);
  if (magic_number != expected_magic)
    throw fail("wrong magic number: expected " + hex32(expected_magic) + " (unsigned bytes, " +
               std::to_string(expected_rank) + " dimensions), found " + hex32(magic_number) +
               " (not an IDX file of this kind)");

  // Extents: big-endian uint32 each. Their product is bounded before it is
  // formed, so a corrupt header cannot overflow it.
  constexpr int64_t kMaxElements = int64_t{1} << 36;  // 64 GiB: far beyond any dataset here
  IdxArray array;
  int64_t count = 1;
  for (int d = 0; d < expected_rank; ++d) {
    uint8_t bytes[4];
    if (file.read(bytes, 4, where) < 4)
      throw fail("truncated header: it ends inside the extent of dimension " + std::to_string(d));
    const int64_t extent = (int64_t{bytes[0]} << 24) | (int64_t{bytes[1]} << 16) | (int64_t{bytes[2]} << 8) |
                           int64_t{bytes[3]};
    if (extent == 0) throw fail("dimension " + std::to_string(d) + " has extent 0");
    if (count > kMaxElements / extent) throw fail("implausibly large extents in the header");
    count *= extent;
    array.dims.push_back(extent);
  }

  // The data, read in 1 MiB pieces so that a header announcing far more
  // than the file holds fails at the end of the file, not at an allocation.
  constexpr size_t kPiece = size_t{1} << 20;
  array.values.reserve(static_cast<size_t>(std::min<int64_t>(count, int64_t{1} << 26)));
  size_t have = 0;
  while (have < static_cast<size_t>(count)) {
    const size_t want = std::min(kPiece, static_cast<size_t>(count) - have);
    array.values.resize(have + want);
    const size_t got = file.read(array.values.data() + have, want, where);
    have += got;
    if (got < want) {
      std::string dims;  // "60000 x 28 x 28 = " (nothing for rank 1)
      for (size_t d = 0; d < array.dims.size() && array.dims.size() > 1; ++d)
        dims += std::to_string(array.dims[d]) + (d + 1 < array.dims.size() ? " x " : " = ");
      throw fail("truncated: the header announces " + dims + std::to_string(count) +
                 " data bytes, but the file holds only " + std::to_string(have));
    }
  }
  // Nothing may follow the data.
  uint8_t extra[4096];
  size_t trailing = 0;
  for (size_t got; (got = file.read(extra, sizeof extra, where)) > 0;) trailing += got;
  if (trailing > 0)
    throw fail("trailing garbage: " + std::to_string(trailing) + " bytes after the " + std::to_string(count) +
               " data bytes the header announces");
  return array;
}

std::string default_data_dir(DatasetName dataset) {
  if (dataset == DatasetName::fashion) return "/usr/share/datasets/fashion-mnist";
  const char* from_environment = std::getenv("ENGINE_DATA_DIR");
  return from_environment != nullptr && *from_environment != '\0' ? from_environment : "data/mnist";
}

std::string how_to_fetch(DatasetName dataset) {
  if (dataset == DatasetName::fashion)
    return "install Fashion-MNIST with 'apt-get install dataset-fashion-mnist' (Debian; it puts the files in "
           "/usr/share/datasets/fashion-mnist)";
  return "run tools/fetch_mnist.sh (it downloads and verifies MNIST into $ENGINE_DATA_DIR or data/mnist)";
}

namespace {

// `dir`/`name`, or `dir`/`name`.gz, whichever exists (plain first).
std::string find_idx_file(const std::string& dir, const std::string& name, const std::string& what,
                          DatasetName dataset) {
  const std::filesystem::path plain = std::filesystem::path(dir) / name;
  const std::filesystem::path gzipped = std::filesystem::path(dir) / (name + ".gz");
  std::error_code ignored;
  if (std::filesystem::is_regular_file(plain, ignored)) return plain.string();
  if (std::filesystem::is_regular_file(gzipped, ignored)) return gzipped.string();
  throw Error("load_mnist: " + what + " not found: neither '" + plain.string() + "' nor '" + gzipped.string() +
              "' exists; " + how_to_fetch(dataset));
}

}  // namespace

Dataset load_mnist(const std::string& dir_or_empty, Split split, DatasetName dataset) {
  const std::string dir = dir_or_empty.empty() ? default_data_dir(dataset) : dir_or_empty;
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string name = std::string(dataset == DatasetName::mnist ? "MNIST" : "Fashion-MNIST") + " " +
                           (split == Split::train ? "train" : "test");
  const std::string fetch = how_to_fetch(dataset);

  const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte", name + " images", dataset);
  const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte", name + " labels", dataset);
  const IdxArray images = read_idx(images_path, 3, fetch);
  const IdxArray labels = read_idx(labels_path, 1, fetch);

  const int64_t n = images.dims[0];
  ENGINE_CHECK(images.dims[1] == 28 && images.dims[2] == 28, "IDX file '", images_path,
               "': expected images of 28 x 28 pixels, got ", images.dims[1], " x ", images.dims[2], "; ", fetch);
  ENGINE_CHECK(labels.dims[0] == n, "load_mnist: count mismatch: '", images_path, "' holds ", n, " images but '",
               labels_path, "' holds ", labels.dims[0], " labels; ", fetch);

  Dataset result;
  result.images = Tensor::empty({n, 1, 28, 28});
  float* pixels = result.images.data<float>();
  for (size_t i = 0; i < images.values.size(); ++i) pixels[i] = static_cast<float>(images.values[i]) / 255.0f;
  result.labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t label = labels.values[static_cast<size_t>(i)];
    ENGINE_CHECK(label <= 9, "IDX file '", labels_path, "': label ", i, " is ", int(label), ", expected 0..9; ",
                 fetch);
    result.labels[static_cast<size_t>(i)] = label;
  }
  result.description = name + " (" + std::to_string(n) + " images) from " + dir;
  return result;
}

}  // namespace engine::data
