// Safetensors: round trips (bit-exact), hand-built golden bytes, an independent
// parse of what the writer wrote, one test per kind of corrupt file (each
// checking that the message names the file, the problem and the tensor), and
// the atomicity of writes.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>

#include "core/safetensors.h"

namespace engine {
namespace {

namespace fs = std::filesystem;

// --- Byte helpers (independent of the code under test) ----------------------------

std::string u64_le(uint64_t value) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((value >> (8 * i)) & 0xFF);
  return bytes;
}

std::string f32_bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::string i64_bytes(const std::vector<int64_t>& values) {
  std::string bytes(values.size() * 8, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// A safetensors file: length, header, data buffer.
std::string file_bytes(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

std::string tensor_bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

// --- Fixture: a fresh directory per test --------------------------------------------

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "safetensors_test_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string write_bytes(const std::string& name, const std::string& bytes) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good());
    return p;
  }

  static std::string read_bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    return contents.str();
  }

  // The names of the files in the test directory, sorted.
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  void expect_no_temporary_files() const {
    for (const std::string& name : files()) EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
  }

  // Writes a file from `header` and `data`, loads it, and expects an error
  // whose message contains the path and every fragment.
  void expect_corrupt(const std::string& header, const std::string& data,
                      std::initializer_list<std::string> fragments) const {
    expect_load_error(write_bytes("corrupt.safetensors", file_bytes(header, data)), fragments);
  }

  static void expect_load_error(const std::string& p, std::initializer_list<std::string> fragments) {
    try {
      load_safetensors(p);
      ADD_FAILURE() << "load_safetensors accepted a bad file";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("'" + p + "'"), std::string::npos) << "message does not name the file: " << message;
      for (const std::string& fragment : fragments)
        EXPECT_NE(message.find(fragment), std::string::npos) << "missing \"" << fragment << "\" in: " << message;
    }
  }

  std::string dir_;
};

// --- Round trips ---------------------------------------------------------------------

TEST_F(Safetensors, RoundTripIsBitExact) {
  const float nan_with_payload = [] {
    uint32_t bits = 0x7FC01234u;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }();
  const NamedTensors tensors = {
      {"conv.weight", Tensor::from_vector({1.5f, -0.0f, 3.0e-42f /* subnormal */, 1e38f, -7.25f, 0.1f,
                                           std::numeric_limits<float>::infinity(), nan_with_payload},
                                          {2, 1, 2, 2})},
      {"bn.num_batches_tracked", Tensor::from_vector_i64({123456789012345}, {})},  // scalar, shape []
      {"empty", Tensor::zeros({0, 3})},
      {"ids", Tensor::from_vector_i64({std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()},
                                      {4})},
      {"scale", Tensor::scalar(0.5f)},
      {"empty_i64", Tensor::zeros({2, 0}, DType::I64)},
  };
  const std::string p = path("model.safetensors");
  save_safetensors(p, tensors);
  const SafetensorsContents loaded = load_safetensors(p);

  EXPECT_TRUE(loaded.metadata.empty());
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {  // written back to back, so read back in the same order
    SCOPED_TRACE(tensors[i].first);
    const Tensor& expected = tensors[i].second;
    const Tensor& actual = loaded.tensors[i].second;
    EXPECT_EQ(loaded.tensors[i].first, tensors[i].first);
    EXPECT_EQ(actual.dtype(), expected.dtype());
    EXPECT_EQ(actual.shape(), expected.shape());
    EXPECT_TRUE(actual.device().is_cpu());
    EXPECT_EQ(tensor_bytes(actual), tensor_bytes(expected));
  }
  expect_no_temporary_files();
}

TEST_F(Safetensors, MetadataRoundTrip) {
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"step", "1200"}, {"note", "quote \" backslash \\ newline \n tab \t \xC3\xA9"}, {"", ""}};
  const std::string p = path("with_metadata.safetensors");
  save_safetensors(p, {{"w", Tensor::from_vector({1, 2}, {2})}}, metadata);
  const SafetensorsContents loaded = load_safetensors(p);
  EXPECT_EQ(loaded.metadata, metadata);
  ASSERT_EQ(loaded.tensors.size(), 1u);
  EXPECT_EQ(loaded.tensors[0].second.to_vector(), (std::vector<float>{1, 2}));
}

TEST_F(Safetensors, NoTensorsAtAll) {
  const std::string p = path("empty.safetensors");
  save_safetensors(p, {}, {{"k", "v"}});
  const SafetensorsContents loaded = load_safetensors(p);
  EXPECT_TRUE(loaded.tensors.empty());
  EXPECT_EQ(loaded.metadata.at("k"), "v");
}

TEST_F(Safetensors, RoundTripFromCuda) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const Tensor host = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  const std::string p = path("cuda.safetensors");
  save_safetensors(p, {{"w", host.to(Device::cuda())}, {"n", Tensor::from_vector_i64({7}, {1}, Device::cuda())}});
  const SafetensorsContents loaded = load_safetensors(p);
  ASSERT_EQ(loaded.tensors.size(), 2u);
  EXPECT_EQ(tensor_bytes(loaded.tensors[0].second), tensor_bytes(host));
  EXPECT_EQ(loaded.tensors[1].second.to_vector_i64(), (std::vector<int64_t>{7}));
}

// --- Golden bytes ------------------------------------------------------------------

// A file built by hand as the format specifies. The header lists the tensors
// out of offset order, with whitespace and metadata; the reader returns them
// in offset order.
TEST_F(Safetensors, ReadsHandBuiltGoldenFile) {
  const std::string header =
      "{\"__metadata__\": {\"format\": \"pt\"},\n"
      " \"b\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [8, 16]},\n"
      " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}   ";
  std::string bytes;
  bytes += u64_le(header.size());
  bytes += header;
  bytes += std::string("\x00\x00\x80\x3F", 4);                  // 1.0f   = 0x3F800000, little-endian
  bytes += std::string("\x00\x00\x00\xC0", 4);                  // -2.0f  = 0xC0000000
  bytes += std::string("\x2A\x00\x00\x00\x00\x00\x00\x00", 8);  // 42 as int64
  const SafetensorsContents loaded = load_safetensors(write_bytes("golden.safetensors", bytes));

  ASSERT_EQ(loaded.tensors.size(), 2u);
  EXPECT_EQ(loaded.tensors[0].first, "a");
  EXPECT_EQ(loaded.tensors[0].second.dtype(), DType::F32);
  EXPECT_EQ(loaded.tensors[0].second.shape(), (Shape{2}));
  EXPECT_EQ(loaded.tensors[0].second.to_vector(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(loaded.tensors[1].first, "b");
  EXPECT_EQ(loaded.tensors[1].second.dtype(), DType::I64);
  EXPECT_EQ(loaded.tensors[1].second.shape(), (Shape{}));
  EXPECT_EQ(loaded.tensors[1].second.to_vector_i64(), (std::vector<int64_t>{42}));
  EXPECT_EQ(loaded.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

// What the writer writes, taken apart by hand: the length, a space-padded
// header of the expected entries, and the raw little-endian data.
TEST_F(Safetensors, WriterOutputParsesIndependently) {
  const std::string p = path("written.safetensors");
  save_safetensors(p,
                   {{"w", Tensor::from_vector({1, 2, 3, 4}, {2, 2})},
                    {"step", Tensor::from_vector_i64({7}, {1})},
                    {"s", Tensor::scalar(-1.0f)}},
                   {{"k", "v"}});
  const std::string bytes = read_bytes(p);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u) << "header is padded to a multiple of 8 bytes";
  const std::size_t data_bytes = 16 + 8 + 4;
  ASSERT_EQ(bytes.size(), 8 + n + data_bytes);

  const std::string header = bytes.substr(8, n);
  const std::size_t last = header.find_last_not_of(' ');
  ASSERT_NE(last, std::string::npos);
  EXPECT_EQ(header.front(), '{');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(header.size() - (last + 1), 8u) << "no more padding than needed";
  for (const char* entry : {R"("__metadata__":{"k":"v"})",
                            R"("w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})",
                            R"("step":{"dtype":"I64","shape":[1],"data_offsets":[16,24]})",
                            R"("s":{"dtype":"F32","shape":[],"data_offsets":[24,28]})"})
    EXPECT_NE(header.find(entry), std::string::npos) << entry << " not in " << header;

  EXPECT_EQ(bytes.substr(8 + n), f32_bytes({1, 2, 3, 4}) + i64_bytes({7}) + f32_bytes({-1.0f}));
}

// The example at the top of core/safetensors.cpp, byte for byte.
TEST_F(Safetensors, WriterMatchesDocumentedExample) {
  const std::string p = path("example.safetensors");
  save_safetensors(p, {{"w", Tensor::from_vector({1.0f, 2.0f}, {2})}});
  const std::string expected = std::string("\x38\x00\x00\x00\x00\x00\x00\x00", 8) +
                               R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})" + "  " +
                               std::string("\x00\x00\x80\x3F\x00\x00\x00\x40", 8);
  EXPECT_EQ(read_bytes(p), expected);
}

// --- Corrupt files: each is rejected with a message naming file and problem ------------

TEST_F(Safetensors, MissingFile) {
  expect_load_error(path("does_not_exist.safetensors"), {"cannot open", "No such file or directory"});
}

TEST_F(Safetensors, FileShorterThanLength) {
  expect_load_error(write_bytes("short.safetensors", std::string("\x05\x00\x00\x00\x00", 5)), {"5 bytes", "too short"});
}

TEST_F(Safetensors, HeaderLongerThanFile) {
  expect_load_error(write_bytes("long_header.safetensors", u64_le(1000) + "{}"),
                    {"header length 1000", "larger than the rest of the file"});
}

TEST_F(Safetensors, HeaderLengthAbsurd) {
  expect_load_error(write_bytes("absurd.safetensors", u64_le(uint64_t{1} << 40) + "{}"),
                    {"header length 1099511627776", "absurd"});
  expect_load_error(write_bytes("absurd2.safetensors", u64_le(~uint64_t{0}) + "{}"), {"absurd"});
}

TEST_F(Safetensors, HeaderNotJson) {
  expect_corrupt(R"({"w": {"dtype": "F32",)", "", {"header is not valid JSON", "JSON parse error at byte 22"});
}

TEST_F(Safetensors, HeaderEmpty) { expect_corrupt("", "", {"header is not valid JSON", "got end of input"}); }

TEST_F(Safetensors, HeaderNotObject) {
  expect_corrupt("[1, 2]", "", {"header must be a JSON object, got array"});
}

TEST_F(Safetensors, DuplicateTensorInHeader) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                 R"("w":{"dtype":"F32","shape":[],"data_offsets":[4,8]}})",
                 f32_bytes({1, 2}), {"duplicate key \"w\""});
}

TEST_F(Safetensors, EntryNotObject) {
  expect_corrupt(R"({"w": 5})", "", {"tensor 'w'", "entry must be an object", "got integer"});
}

TEST_F(Safetensors, EntryMissingDtype) {
  expect_corrupt(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", f32_bytes({1}),
                 {"tensor 'w'", "missing \"dtype\""});
}

TEST_F(Safetensors, EntryMissingShape) {
  expect_corrupt(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", f32_bytes({1}),
                 {"tensor 'w'", "missing \"shape\""});
}

TEST_F(Safetensors, EntryMissingDataOffsets) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[1]}})", f32_bytes({1}), {"tensor 'w'", "missing \"data_offsets\""});
}

TEST_F(Safetensors, DtypeNotString) {
  expect_corrupt(R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", f32_bytes({1}),
                 {"tensor 'w'", "\"dtype\" must be a JSON string, got integer"});
}

TEST_F(Safetensors, ShapeNotArray) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", f32_bytes({1}),
                 {"tensor 'w'", "\"shape\" must be a JSON array, got string"});
}

TEST_F(Safetensors, ShapeNotIntegers) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[1, 2.0],"data_offsets":[0,8]}})", f32_bytes({1, 2}),
                 {"tensor 'w'", "\"shape\" element 1 must be an integer, got number"});
}

TEST_F(Safetensors, DataOffsetsWrongForm) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", f32_bytes({1}),
                 {"tensor 'w'", "\"data_offsets\" must be [begin, end], two integers; got [0]"});
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}})", f32_bytes({1}),
                 {"tensor 'w'", "must be [begin, end]"});
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":{"begin":0}}})", f32_bytes({1}),
                 {"tensor 'w'", "\"data_offsets\" must be a JSON array, got object"});
}

TEST_F(Safetensors, UnknownDtype) {
  expect_corrupt(R"({"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", f32_bytes({1}),
                 {"tensor 'w'", "unknown dtype \"Q7\""});
}

TEST_F(Safetensors, UnsupportedDtypes) {
  for (const std::string dtype : {"F16", "BF16", "F64", "I32", "U8", "BOOL"}) {
    SCOPED_TRACE(dtype);
    expect_corrupt(R"({"w":{"dtype":")" + dtype + R"(","shape":[1],"data_offsets":[0,1]}})", "\x01",
                   {"tensor 'w'", "unsupported dtype \"" + dtype + "\"", "reads F32 and I64"});
  }
}

TEST_F(Safetensors, NegativeShapeExtent) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,0]}})", "",
                 {"tensor 'w'", "negative extent -2 in shape [2, -2]"});
}

TEST_F(Safetensors, NegativeOffsets) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "",
                 {"tensor 'w'", "negative data_offsets [-4, 0]"});
}

TEST_F(Safetensors, BeginAfterEnd) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", f32_bytes({1, 2, 3}),
                 {"tensor 'w'", "data_offsets [8, 4] have begin > end"});
}

TEST_F(Safetensors, OffsetsPastEndOfBuffer) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}})", f32_bytes({1, 2, 3, 4}),
                 {"tensor 'w'", "data_offsets [0, 400] run past the end of the 16-byte data buffer"});
}

TEST_F(Safetensors, TruncatedFile) {
  // A good file with its last bytes cut off: the last tensor runs past the end.
  const std::string p = path("truncated.safetensors");
  save_safetensors(p, {{"a", Tensor::ones({4})}, {"b", Tensor::ones({4})}});
  std::string bytes = read_bytes(p);
  bytes.resize(bytes.size() - 3);
  expect_load_error(write_bytes("truncated.safetensors", bytes), {"tensor 'b'", "run past the end"});
}

TEST_F(Safetensors, ByteCountMismatch) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", f32_bytes({1, 2, 3}),
                 {"tensor 'w'", "hold 12 bytes, but shape [2, 2] of F32 needs 16"});
  expect_corrupt(R"({"n":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}})", i64_bytes({1}),
                 {"tensor 'n'", "hold 8 bytes, but shape [2] of I64 needs 16"});
}

TEST_F(Safetensors, ShapeTooLarge) {
  expect_corrupt(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", "",
                 {"tensor 'w'", "too large"});
}

TEST_F(Safetensors, OverlappingTensors) {
  expect_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 f32_bytes({1, 2, 3}), {"tensors 'a' (data_offsets [0, 8]) and 'b' (data_offsets [4, 12]) overlap"});
}

TEST_F(Safetensors, SameOffsetsTwice) {
  expect_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                 f32_bytes({1, 2}), {"'a'", "'b'", "overlap"});
}

TEST_F(Safetensors, HoleBetweenTensors) {
  expect_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                 f32_bytes({1, 2, 3, 4, 5}), {"bytes [8, 12)", "hole before tensor 'b'", "cover the buffer exactly"});
}

TEST_F(Safetensors, HoleAtStart) {
  expect_corrupt(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32_bytes({1, 2}),
                 {"bytes [0, 4)", "hole before tensor 'a'"});
}

TEST_F(Safetensors, TrailingBytesAfterLastTensor) {
  expect_corrupt(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32_bytes({1, 2, 3}),
                 {"bytes [8, 12) at the end of the data buffer belong to no tensor"});
}

TEST_F(Safetensors, MetadataValueNotString) {
  expect_corrupt(R"({"__metadata__":{"format":"pt","step":1200}})", "",
                 {"\"__metadata__\" value of key \"step\" must be a string, got integer"});
}

TEST_F(Safetensors, MetadataNotObject) {
  expect_corrupt(R"({"__metadata__":["pt"]})", "", {"\"__metadata__\" must be an object of strings, got array"});
}

// Robustness: every single-byte corruption and every truncation of a small
// valid file either loads or is rejected with an engine::Error; nothing else
// (no crash, no other exception, no huge allocation). Run under the sanitizers
// this also checks that no corruption makes the reader touch memory it should not.
TEST_F(Safetensors, EveryCorruptionIsRejectedCleanly) {
  const std::string good_path = path("good.safetensors");
  save_safetensors(good_path, {{"w", Tensor::from_vector({1, 2, 3}, {3})}, {"n", Tensor::from_vector_i64({5}, {})}},
                   {{"k", "v"}});
  const std::string good = read_bytes(good_path);
  const auto load_cleanly = [&](const std::string& bytes, const std::string& what) {
    const std::string p = write_bytes("mutated.safetensors", bytes);
    try {
      load_safetensors(p);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'" + p + "'"), std::string::npos) << what << ": " << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": unexpected exception type: " << e.what();
    }
  };
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (const unsigned char value : {0x00, 0x20, 0x22, 0x2C, 0x2D, 0x39, 0x5B, 0x7B, 0x7D, 0xFF}) {
      std::string bytes = good;
      bytes[i] = static_cast<char>(value);
      load_cleanly(bytes, "byte " + std::to_string(i) + " set to " + std::to_string(value));
    }
  }
  for (std::size_t length = 0; length < good.size(); ++length)
    load_cleanly(good.substr(0, length), "truncated to " + std::to_string(length) + " bytes");
}

// --- Writer checks and atomicity ----------------------------------------------------------

TEST_F(Safetensors, WriterRejectsBadNames) {
  const std::string p = path("bad.safetensors");
  const Tensor t = Tensor::ones({2});
  const auto expect_save_error = [&](const NamedTensors& tensors, const std::string& fragment) {
    try {
      save_safetensors(p, tensors);
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'" + p + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_save_error({{"a", t}, {"", t}}, "tensor #1 has an empty name");
  expect_save_error({{"a", t}, {"b", t}, {"a", t}}, "duplicate tensor name 'a'");
  expect_save_error({{"__metadata__", t}}, "reserved for metadata");
  expect_save_error({{"u", Tensor()}}, "tensor 'u' is undefined");
  expect_save_error({{"bad \xFF utf8", t}}, "cannot encode the header");
  EXPECT_TRUE(files().empty()) << "nothing is written for bad input";
}

TEST_F(Safetensors, WriteIntoMissingDirectoryLeavesNothing) {
  const std::string missing_dir = path("no_such_dir");
  const std::string p = missing_dir + "/model.safetensors";
  try {
    save_safetensors(p, {{"w", Tensor::ones({2})}});
    FAIL() << "wrote into a directory that does not exist";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'" + p + "'"), std::string::npos) << message;
    EXPECT_NE(message.find(std::strerror(ENOENT)), std::string::npos) << message;
  }
  EXPECT_FALSE(fs::exists(missing_dir));
  EXPECT_TRUE(files().empty());
}

TEST_F(Safetensors, OverwriteReplacesWholly) {
  const std::string p = path("model.safetensors");
  save_safetensors(p, {{"big", Tensor::ones({1000})}, {"other", Tensor::ones({10})}}, {{"k", "v"}});
  const std::size_t big_size = fs::file_size(p);
  save_safetensors(p, {{"small", Tensor::from_vector({3, 4}, {2})}});
  EXPECT_LT(fs::file_size(p), big_size);
  const SafetensorsContents loaded = load_safetensors(p);
  ASSERT_EQ(loaded.tensors.size(), 1u);
  EXPECT_EQ(loaded.tensors[0].first, "small");
  EXPECT_EQ(loaded.tensors[0].second.to_vector(), (std::vector<float>{3, 4}));
  EXPECT_TRUE(loaded.metadata.empty());
  EXPECT_EQ(files(), (std::vector<std::string>{"model.safetensors"}));
}

TEST_F(Safetensors, FailedSaveLeavesExistingFileUntouched) {
  const std::string p = path("model.safetensors");
  save_safetensors(p, {{"w", Tensor::from_vector({1, 2}, {2})}});
  const std::string before = read_bytes(p);
  EXPECT_THROW(save_safetensors(p, {{"x", Tensor::ones({3})}, {"x", Tensor::ones({3})}}), Error);
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EQ(files(), (std::vector<std::string>{"model.safetensors"}));
}

// A write that fails halfway (the file-size limit makes write(2) fail with
// EFBIG) removes its temporary file and leaves the old checkpoint as it was.
TEST_F(Safetensors, FailedWriteMidFileLeavesExistingFileUntouched) {
  const std::string p = path("model.safetensors");
  save_safetensors(p, {{"w", Tensor::from_vector({1, 2}, {2})}});
  const std::string before = read_bytes(p);

  rlimit saved_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved_limit), 0);
  rlimit small_limit = saved_limit;
  small_limit.rlim_cur = 4096;  // bytes
  const auto saved_handler = ::signal(SIGXFSZ, SIG_IGN);  // fail with EFBIG instead of killing us
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small_limit), 0);
  std::string message;
  try {
    save_safetensors(p, {{"big", Tensor::ones({100000})}});
  } catch (const Error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved_limit);
  ::signal(SIGXFSZ, saved_handler);

  ASSERT_FALSE(message.empty()) << "the write did not fail";
  EXPECT_NE(message.find("'" + p + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("tensor 'big'"), std::string::npos) << message;
  EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EQ(files(), (std::vector<std::string>{"model.safetensors"}));
}

// The rename is the last step that can fail: over a non-empty directory it
// does, and the temporary file must go again.
TEST_F(Safetensors, FailedRenameRemovesTemporaryFile) {
  const std::string p = path("a_directory");
  fs::create_directory(p);
  std::ofstream(p + "/keep") << "x";
  try {
    save_safetensors(p, {{"w", Tensor::ones({2})}});
    FAIL() << "renamed a file over a directory";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("'" + p + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("renaming"), std::string::npos) << message;
    EXPECT_NE(message.find(std::strerror(EISDIR)), std::string::npos) << message;
  }
  EXPECT_EQ(files(), (std::vector<std::string>{"a_directory"}));
  EXPECT_TRUE(fs::exists(p + "/keep"));
}

TEST_F(Safetensors, LoadingADirectoryIsAnError) {
  fs::create_directory(path("dir"));
  expect_load_error(path("dir"), {"not a regular file"});
}

}  // namespace
}  // namespace engine
