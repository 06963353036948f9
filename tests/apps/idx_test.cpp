// IDX reader and MNIST loader: files written here (plain and gzipped), read
// back; every kind of corrupt file rejected with a message that names the
// file, the problem and the fetch command; the real MNIST when it is there.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/common/idx.h"
#include "tests/apps/app_test_util.h"

namespace engine::data {
namespace {

namespace fs = std::filesystem;

// A fresh, empty directory for one test.
std::string fresh_dir(const std::string& name) { return app_test::fresh_dir("engine_idx_test_" + name); }

// The bytes of an IDX file of unsigned bytes: magic 0x000008<rank>, the
// extents big-endian, the values.
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(d >> shift));
  bytes.insert(bytes.end(), values.begin(), values.end());
  return bytes;
}

void write_plain(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void write_gzipped(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

// A small MNIST-shaped split: n images whose pixel (i, y, x) is the byte
// (i * 31 + y * 28 + x) % 256, and labels (i * 3) % 10.
std::vector<uint8_t> pattern_pixels(uint32_t n) {
  std::vector<uint8_t> pixels(n * 28 * 28);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t p = 0; p < 28 * 28; ++p) pixels[i * 784 + p] = static_cast<uint8_t>((i * 31 + p) % 256);
  return pixels;
}
std::vector<uint8_t> pattern_labels(uint32_t n) {
  std::vector<uint8_t> labels(n);
  for (uint32_t i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>((i * 3) % 10);
  return labels;
}

using app_test::error_of;

void expect_pattern_dataset(const Dataset& data, uint32_t n) {
  ASSERT_EQ(data.images.shape(), (Shape{n, 1, 28, 28}));
  ASSERT_EQ(data.size(), n);
  const std::vector<float> values = data.images.to_vector();
  for (uint32_t i = 0; i < n; ++i) {
    EXPECT_EQ(data.labels[i], (i * 3) % 10) << "label " << i;
    for (uint32_t p = 0; p < 784; ++p)
      ASSERT_EQ(values[i * 784 + p], static_cast<float>((i * 31 + p) % 256) / 255.0f) << "image " << i << " pixel " << p;
  }
}

TEST(Idx, ReadsPlainFiles) {
  const std::string dir = fresh_dir("plain");
  write_plain(dir + "/train-images-idx3-ubyte", idx_bytes({5, 28, 28}, pattern_pixels(5)));
  write_plain(dir + "/train-labels-idx1-ubyte", idx_bytes({5}, pattern_labels(5)));
  const Dataset data = load_mnist(dir, Split::train);
  expect_pattern_dataset(data, 5);
  EXPECT_NE(data.description.find("MNIST train (5 images)"), std::string::npos) << data.description;
}

TEST(Idx, ReadsGzippedFiles) {
  const std::string dir = fresh_dir("gzipped");
  write_gzipped(dir + "/t10k-images-idx3-ubyte.gz", idx_bytes({7, 28, 28}, pattern_pixels(7)));
  write_gzipped(dir + "/t10k-labels-idx1-ubyte.gz", idx_bytes({7}, pattern_labels(7)));
  expect_pattern_dataset(load_mnist(dir, Split::test), 7);
}

TEST(Idx, ReadIdxReturnsDimsAndRowMajorValues) {
  const std::string dir = fresh_dir("generic");
  std::vector<uint8_t> values(2 * 3 * 4);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(200 + i);
  write_plain(dir + "/a.idx", idx_bytes({2, 3, 4}, values));
  const IdxArray array = read_idx(dir + "/a.idx", 3, "hint");
  EXPECT_EQ(array.dims, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(array.values, values);
}

TEST(Idx, RejectsWrongMagicNumber) {
  const std::string dir = fresh_dir("magic");
  const std::string path = dir + "/train-images-idx3-ubyte";
  write_plain(path, idx_bytes({5}, pattern_labels(5)));  // a label file under an image file's name
  const std::string message = error_of([&] { read_idx(path, 3, how_to_fetch(DatasetName::mnist)); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("wrong magic number"), std::string::npos) << message;
  EXPECT_NE(message.find("expected 0x00000803"), std::string::npos) << message;
  EXPECT_NE(message.find("found 0x00000801"), std::string::npos) << message;
  EXPECT_NE(message.find("tools/fetch_mnist.sh"), std::string::npos) << message;
}

TEST(Idx, RejectsTruncatedData) {
  const std::string dir = fresh_dir("truncated");
  const std::string path = dir + "/train-labels-idx1-ubyte";
  std::vector<uint8_t> bytes = idx_bytes({10}, pattern_labels(10));
  bytes.erase(bytes.end() - 3, bytes.end());  // 7 of the 10 labels
  write_plain(path, bytes);
  const std::string message = error_of([&] { read_idx(path, 1, how_to_fetch(DatasetName::mnist)); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(message.find("10 data bytes, but the file holds only 7"), std::string::npos) << message;
  EXPECT_NE(message.find("tools/fetch_mnist.sh"), std::string::npos) << message;
}

TEST(Idx, RejectsTruncatedHeader) {
  const std::string dir = fresh_dir("short_header");
  const std::string path = dir + "/x";
  write_plain(path, {0, 0, 8, 3, 0, 0});  // magic, then half an extent
  const std::string message = error_of([&] { read_idx(path, 3, "hint"); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("truncated header"), std::string::npos) << message;
  write_plain(path, {0, 0});
  EXPECT_NE(error_of([&] { read_idx(path, 3, "hint"); }).find("too short"), std::string::npos);
}

TEST(Idx, RejectsTruncatedGzipStream) {
  const std::string dir = fresh_dir("truncated_gz");
  const std::string whole = dir + "/whole.gz", cut = dir + "/cut.gz";
  write_gzipped(whole, idx_bytes({20, 28, 28}, pattern_pixels(20)));
  std::ifstream in(whole, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.resize(bytes.size() / 2);
  write_plain(cut, bytes);
  const std::string message = error_of([&] { read_idx(cut, 3, "hint"); });
  EXPECT_NE(message.find(cut), std::string::npos) << message;
  EXPECT_TRUE(message.find("corrupt gzip data") != std::string::npos ||
              message.find("truncated") != std::string::npos)
      << message;
}

TEST(Idx, RejectsTrailingBytes) {
  const std::string dir = fresh_dir("trailing");
  const std::string path = dir + "/train-labels-idx1-ubyte.gz";
  std::vector<uint8_t> bytes = idx_bytes({4}, pattern_labels(4));
  bytes.insert(bytes.end(), {1, 2, 3});
  write_gzipped(path, bytes);
  const std::string message = error_of([&] { read_idx(path, 1, how_to_fetch(DatasetName::mnist)); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("trailing garbage: 3 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("tools/fetch_mnist.sh"), std::string::npos) << message;
}

TEST(Idx, RejectsZeroExtent) {
  const std::string dir = fresh_dir("zero");
  const std::string path = dir + "/x";
  write_plain(path, idx_bytes({0}, {}));
  const std::string message = error_of([&] { read_idx(path, 1, "hint"); });
  EXPECT_NE(message.find("dimension 0 has extent 0"), std::string::npos) << message;
}

TEST(Idx, RejectsImageLabelCountMismatch) {
  const std::string dir = fresh_dir("mismatch");
  write_plain(dir + "/train-images-idx3-ubyte", idx_bytes({5, 28, 28}, pattern_pixels(5)));
  write_plain(dir + "/train-labels-idx1-ubyte", idx_bytes({4}, pattern_labels(4)));
  const std::string message = error_of([&] { load_mnist(dir, Split::train); });
  EXPECT_NE(message.find("count mismatch"), std::string::npos) << message;
  EXPECT_NE(message.find(dir + "/train-images-idx3-ubyte' holds 5 images"), std::string::npos) << message;
  EXPECT_NE(message.find(dir + "/train-labels-idx1-ubyte' holds 4 labels"), std::string::npos) << message;
  EXPECT_NE(message.find("tools/fetch_mnist.sh"), std::string::npos) << message;
}

TEST(Idx, RejectsWrongImageSizeAndBadLabels) {
  const std::string dir = fresh_dir("bad_content");
  write_plain(dir + "/train-images-idx3-ubyte", idx_bytes({2, 27, 28}, std::vector<uint8_t>(2 * 27 * 28, 0)));
  write_plain(dir + "/train-labels-idx1-ubyte", idx_bytes({2}, {1, 2}));
  std::string message = error_of([&] { load_mnist(dir, Split::train); });
  EXPECT_NE(message.find("expected images of 28 x 28 pixels, got 27 x 28"), std::string::npos) << message;

  write_plain(dir + "/train-images-idx3-ubyte", idx_bytes({2, 28, 28}, pattern_pixels(2)));
  write_plain(dir + "/train-labels-idx1-ubyte", idx_bytes({2}, {1, 12}));
  message = error_of([&] { load_mnist(dir, Split::train); });
  EXPECT_NE(message.find("label 1 is 12, expected 0..9"), std::string::npos) << message;
  EXPECT_NE(message.find("train-labels-idx1-ubyte"), std::string::npos) << message;
}

TEST(Idx, MissingFilesNameThePathsTriedAndTheFetchCommand) {
  const std::string dir = fresh_dir("missing");
  std::string message = error_of([&] { load_mnist(dir, Split::test); });
  EXPECT_NE(message.find("MNIST test images not found"), std::string::npos) << message;
  EXPECT_NE(message.find(dir + "/t10k-images-idx3-ubyte'"), std::string::npos) << message;
  EXPECT_NE(message.find(dir + "/t10k-images-idx3-ubyte.gz'"), std::string::npos) << message;
  EXPECT_NE(message.find("tools/fetch_mnist.sh"), std::string::npos) << message;

  message = error_of([&] { read_idx(dir + "/nothing", 1, how_to_fetch(DatasetName::mnist)); });
  EXPECT_NE(message.find(dir + "/nothing': no such file"), std::string::npos) << message;

  message = error_of([&] { load_mnist(dir, Split::train, DatasetName::fashion); });
  EXPECT_NE(message.find("Fashion-MNIST train images not found"), std::string::npos) << message;
  EXPECT_NE(message.find("apt-get install dataset-fashion-mnist"), std::string::npos) << message;
}

// The real data, when tools/fetch_mnist.sh has been run.
using app_test::mnist_dir;

TEST(Idx, RealMnistWhenPresent) {
  const std::string dir = mnist_dir();
  if (!fs::exists(fs::path(dir) / "train-images-idx3-ubyte") && !fs::exists(fs::path(dir) / "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "MNIST not found in " << dir << "; run tools/fetch_mnist.sh to download it";
  const Dataset train = load_mnist(dir, Split::train);
  const Dataset test = load_mnist(dir, Split::test);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ((std::vector<int64_t>(train.labels.begin(), train.labels.begin() + 5)), (std::vector<int64_t>{5, 0, 4, 1, 9}));
  EXPECT_EQ((std::vector<int64_t>(test.labels.begin(), test.labels.begin() + 5)), (std::vector<int64_t>{7, 2, 1, 0, 4}));
  // The first training image (a 5): its bytes sum to 27525, the brightest is 255.
  const float* first = train.images.data<float>();
  double sum = 0;
  float brightest = 0;
  for (int p = 0; p < 784; ++p) sum += first[p], brightest = std::max(brightest, first[p]);
  EXPECT_NEAR(sum * 255.0, 27525.0, 1e-2);
  EXPECT_EQ(brightest, 1.0f);
}

TEST(Idx, RealFashionMnistWhenPresent) {
  const std::string dir = default_data_dir(DatasetName::fashion);
  if (!fs::exists(fs::path(dir) / "t10k-images-idx3-ubyte.gz") && !fs::exists(fs::path(dir) / "t10k-images-idx3-ubyte"))
    GTEST_SKIP() << "Fashion-MNIST not found in " << dir << "; apt-get install dataset-fashion-mnist";
  const Dataset test = load_mnist("", Split::test, DatasetName::fashion);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ((std::vector<int64_t>(test.labels.begin(), test.labels.begin() + 5)), (std::vector<int64_t>{9, 2, 1, 1, 6}));
}

}  // namespace
}  // namespace engine::data
