// Safetensors reading and writing. The format is in core/safetensors.h; a
// file with one F32 tensor "w" of shape [2] looks like this, byte by byte:
//
//   38 00 00 00 00 00 00 00                   N = 56, little-endian u64
//   {"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   (54 bytes)
//   + 2 spaces                                padding: N is a multiple of 8
//   00 00 80 3F  00 00 00 40                  1.0f, 2.0f (little-endian)
//
// Writing is atomic (temp file, fsync, rename). Reading trusts nothing: every
// field of the header is checked before a byte of tensor data is read, so a
// corrupt or hostile file is rejected with a message instead of crashing or
// allocating absurd amounts of memory.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "core/json.h"

namespace engine {
namespace {

// Tensor bytes go to and from the file as they lie in memory, which is right
// only on a little-endian host (x86-64, ARM64 as configured by every OS we run on).
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O copies tensor bytes as they are in memory; add byte swapping for big-endian hosts");

// The reference implementation refuses headers above 100 MB; so do we, so that
// a garbage length cannot make us allocate gigabytes before noticing.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

constexpr const char* kMetadataKey = "__metadata__";

std::string quoted(const std::string& name) { return "'" + name + "'"; }

// --- dtypes ---------------------------------------------------------------------

// Every dtype name the safetensors format defines. We read and write F32 and
// I64; the rest are "unsupported", any other name is "unknown".
bool is_safetensors_dtype(const std::string& name) {
  static const std::set<std::string> names = {
      "BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "I16", "U16",
      "F16",  "BF16", "I32", "U32",     "F32",     "F64",     "C64", "I64",     "U64"};
  return names.count(name) > 0;
}

// --- POSIX file helpers ---------------------------------------------------------

std::string os_error(int error_number) { return std::strerror(error_number); }

// Owns a file descriptor; closes it when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports the result (close can report a delayed write error).
  int close() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

// write(2) may write fewer bytes than asked, or be interrupted by a signal;
// loop until all are written. Returns 0, or the errno of the failure.
int write_all(int fd, const void* data, std::size_t bytes) {
  const char* cursor = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::write(fd, cursor, bytes);
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    cursor += written;
    bytes -= static_cast<std::size_t>(written);
  }
  return 0;
}

// Reads exactly `bytes`; returns 0, the errno of a failure, or -1 when the
// file ended first.
int read_all(int fd, void* data, std::size_t bytes) {
  char* cursor = static_cast<char*>(data);
  while (bytes > 0) {
    const ssize_t got = ::read(fd, cursor, bytes);
    if (got < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (got == 0) return -1;
    cursor += got;
    bytes -= static_cast<std::size_t>(got);
  }
  return 0;
}

// --- Writing ----------------------------------------------------------------------

// The temporary file of an atomic write: removed again unless committed.
class TemporaryFile {
 public:
  explicit TemporaryFile(std::string path) : path_(std::move(path)) {}
  ~TemporaryFile() {
    if (!committed_) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  void commit() { committed_ = true; }

 private:
  std::string path_;
  bool committed_ = false;
};

// The header JSON for `tensors` laid out back to back in the given order,
// padded with spaces to a multiple of 8 bytes (so that the data buffer starts
// 8-byte aligned in the file, as the reference implementation does).
std::string build_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  json::Value header = json::Members{};
  if (!metadata.empty()) {
    json::Value entries = json::Members{};
    for (const auto& [key, value] : metadata) entries.set(key, value);
    header.set(kMetadataKey, std::move(entries));
  }
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    json::Value shape = json::Elements{};
    for (int64_t extent : tensor.shape()) shape.push_back(extent);
    const int64_t end = offset + static_cast<int64_t>(tensor.nbytes());
    json::Value entry = json::Members{};
    entry.set("dtype", dtype_name(tensor.dtype()));
    entry.set("shape", std::move(shape));
    entry.set("data_offsets", json::Elements{offset, end});
    header.set(name, std::move(entry));
    offset = end;
  }
  std::string text = json::dump(header);
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = "save_safetensors: " + quoted(path);

  // 1. Check the input before touching the file system.
  std::set<std::string> names;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, tensor] = tensors[i];
    ENGINE_CHECK(!name.empty(), where, ": tensor #", i, " has an empty name");
    ENGINE_CHECK(name != kMetadataKey, where, ": tensor #", i, " may not be named '", kMetadataKey,
                 "' (the key is reserved for metadata)");
    ENGINE_CHECK(names.insert(name).second, where, ": duplicate tensor name ", quoted(name));
    ENGINE_CHECK(tensor.defined(), where, ": tensor ", quoted(name), " is undefined");
    ENGINE_CHECK(tensor.dtype() == DType::F32 || tensor.dtype() == DType::I64, where, ": tensor ", quoted(name),
                 " has unsupported dtype ", dtype_name(tensor.dtype()), " (supported: F32, I64)");
  }

  // 2. Host copies of device tensors (CPU tensors are used as they are).
  NamedTensors host;
  host.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) host.emplace_back(name, tensor.to(Device::cpu()));

  std::string header;
  try {
    header = build_header(host, metadata);
  } catch (const Error& e) {  // e.g. a name that is not valid UTF-8
    throw Error(where + ": cannot encode the header: " + e.what());
  }

  // 3. Write everything to "<path>.tmp.<pid>"; the destructor of `temporary`
  // removes it again if anything below throws.
  TemporaryFile temporary(path + ".tmp." + std::to_string(::getpid()));
  const auto fail = [&](const std::string& step, int error_number) {
    throw Error(where + ": " + step + " " + quoted(temporary.path()) + " failed: " + os_error(error_number));
  };
  FileDescriptor file(::open(temporary.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (file.get() < 0) {
    const int error_number = errno;
    temporary.commit();  // nothing was created; do not unlink a file of someone else's
    fail("creating the temporary file", error_number);
  }

  unsigned char length_bytes[8];
  const uint64_t header_length = header.size();
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<unsigned char>(header_length >> (8 * i));
  if (int e = write_all(file.get(), length_bytes, sizeof length_bytes)) fail("writing the header length to", e);
  if (int e = write_all(file.get(), header.data(), header.size())) fail("writing the header to", e);
  for (const auto& [name, tensor] : host)
    if (int e = write_all(file.get(), tensor.raw_data(), tensor.nbytes()))
      fail("writing tensor " + quoted(name) + " to", e);

  // 4. Make the bytes durable before the rename makes them visible: after a
  // crash, `path` holds either the old file or the complete new one.
  if (::fsync(file.get()) != 0) fail("fsync of", errno);
  if (file.close() != 0) fail("closing", errno);
  if (::rename(temporary.path().c_str(), path.c_str()) != 0) {
    const int error_number = errno;
    throw Error(where + ": renaming " + quoted(temporary.path()) + " over it failed: " + os_error(error_number));
  }
  temporary.commit();

  // 5. Best effort: fsync the directory so that the rename itself survives a
  // crash. The new file is complete and in place either way.
  const std::size_t slash = path.find_last_of('/');
  const std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int directory_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd >= 0) {
    ::fsync(directory_fd);
    ::close(directory_fd);
  }
}

// --- Reading ------------------------------------------------------------------------

namespace {

// One header entry, checked: dtype known, shape non-negative, offsets inside the
// data buffer and consistent with dtype and shape.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin;
  uint64_t end;
};

std::string offsets_str(int64_t begin, int64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

Entry parse_entry(const std::string& where, const std::string& name, const json::Value& value,
                  uint64_t data_bytes) {
  const std::string tensor = where + ": tensor " + quoted(name);
  ENGINE_CHECK(value.is_object(), tensor, ": entry must be an object with \"dtype\", \"shape\" and ",
               "\"data_offsets\", got ", json::kind_name(value.kind()));
  const auto field = [&](const char* key, json::Kind kind) -> const json::Value& {
    const json::Value* found = value.find(key);
    ENGINE_CHECK(found != nullptr, tensor, ": missing \"", key, "\"");
    ENGINE_CHECK(found->kind() == kind, tensor, ": \"", key, "\" must be a JSON ", json::kind_name(kind), ", got ",
                 json::kind_name(found->kind()));
    return *found;
  };
  Entry entry{name, DType::F32, {}, 0, 0};

  // dtype
  const std::string& dtype = field("dtype", json::Kind::String).as_string();
  if (dtype == "F32") {
    entry.dtype = DType::F32;
  } else if (dtype == "I64") {
    entry.dtype = DType::I64;
  } else {
    ENGINE_CHECK(!is_safetensors_dtype(dtype), tensor, ": unsupported dtype \"", dtype,
                 "\" (this engine reads F32 and I64)");
    throw Error(tensor + ": unknown dtype " + json::quote(dtype) + " (not a safetensors dtype)");
  }

  // shape: non-negative integers
  const json::Elements& shape = field("shape", json::Kind::Array).as_array();
  for (std::size_t d = 0; d < shape.size(); ++d) {
    ENGINE_CHECK(shape[d].is_int(), tensor, ": \"shape\" element ", d, " must be an integer, got ",
                 json::kind_name(shape[d].kind()));
    entry.shape.push_back(shape[d].as_int());
  }
  for (int64_t extent : entry.shape)
    ENGINE_CHECK(extent >= 0, tensor, ": negative extent ", extent, " in shape ", shape_str(entry.shape));

  // data_offsets: [begin, end], 0 <= begin <= end <= size of the data buffer
  const json::Elements& offsets = field("data_offsets", json::Kind::Array).as_array();
  ENGINE_CHECK(offsets.size() == 2 && offsets[0].is_int() && offsets[1].is_int(), tensor,
               ": \"data_offsets\" must be [begin, end], two integers; got ", json::dump(json::Elements(offsets)));
  const int64_t begin = offsets[0].as_int(), end = offsets[1].as_int();
  ENGINE_CHECK(begin >= 0 && end >= 0, tensor, ": negative data_offsets ", offsets_str(begin, end));
  ENGINE_CHECK(begin <= end, tensor, ": data_offsets ", offsets_str(begin, end), " have begin > end");
  ENGINE_CHECK(static_cast<uint64_t>(end) <= data_bytes, tensor, ": data_offsets ", offsets_str(begin, end),
               " run past the end of the ", data_bytes, "-byte data buffer");
  entry.begin = static_cast<uint64_t>(begin);
  entry.end = static_cast<uint64_t>(end);

  // The byte count must be numel * dtype size (computed without overflow).
  int64_t expected_bytes = static_cast<int64_t>(dtype_size(entry.dtype));
  bool overflow = false;
  for (int64_t extent : entry.shape) overflow |= __builtin_mul_overflow(expected_bytes, extent, &expected_bytes);
  ENGINE_CHECK(!overflow, tensor, ": shape ", shape_str(entry.shape), " is too large to hold in memory");
  ENGINE_CHECK(expected_bytes == end - begin, tensor, ": data_offsets ", offsets_str(begin, end), " hold ",
               end - begin, " bytes, but shape ", shape_str(entry.shape), " of ", dtype, " needs ", expected_bytes);
  return entry;
}

std::map<std::string, std::string> parse_metadata(const std::string& where, const json::Value& value) {
  ENGINE_CHECK(value.is_object(), where, ": \"", kMetadataKey, "\" must be an object of strings, got ",
               json::kind_name(value.kind()));
  std::map<std::string, std::string> metadata;
  for (const auto& [key, entry] : value.as_object()) {
    ENGINE_CHECK(entry.is_string(), where, ": \"", kMetadataKey, "\" value of key ", json::quote(key),
                 " must be a string, got ", json::kind_name(entry.kind()));
    metadata[key] = entry.as_string();
  }
  return metadata;
}

}  // namespace

SafetensorsContents load_safetensors(const std::string& path) {
  const std::string where = "load_safetensors: " + quoted(path);

  FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) throw Error(where + ": cannot open: " + os_error(errno));
  struct stat info {};
  if (::fstat(file.get(), &info) != 0) throw Error(where + ": cannot stat: " + os_error(errno));
  ENGINE_CHECK(S_ISREG(info.st_mode), where, ": not a regular file");
  const uint64_t file_bytes = static_cast<uint64_t>(info.st_size);
  const auto read_or_throw = [&](void* data, std::size_t bytes, const char* what) {
    const int result = read_all(file.get(), data, bytes);
    if (result == -1) throw Error(where + ": file ended while reading " + what + " (was it truncated meanwhile?)");
    if (result != 0) throw Error(where + ": reading " + what + " failed: " + os_error(result));
  };

  // 1. The header length N: 8 bytes, little-endian.
  ENGINE_CHECK(file_bytes >= 8, where, ": file is ", file_bytes,
               " bytes, too short for the 8-byte header length (not a safetensors file?)");
  unsigned char length_bytes[8];
  read_or_throw(length_bytes, sizeof length_bytes, "the header length");
  uint64_t header_bytes = 0;
  for (int i = 0; i < 8; ++i) header_bytes |= static_cast<uint64_t>(length_bytes[i]) << (8 * i);
  ENGINE_CHECK(header_bytes <= kMaxHeaderBytes, where, ": header length ", header_bytes,
               " is absurd (limit: 100 MB); not a safetensors file?");
  ENGINE_CHECK(header_bytes <= file_bytes - 8, where, ": header length ", header_bytes,
               " is larger than the rest of the file (", file_bytes - 8, " bytes after the length)");
  const uint64_t data_bytes = file_bytes - 8 - header_bytes;

  // 2. The header: a JSON object, name -> entry, plus optional "__metadata__".
  std::string header_text(header_bytes, '\0');
  read_or_throw(header_text.data(), header_text.size(), "the header");
  json::Value header;
  try {
    header = json::parse(header_text);
  } catch (const json::ParseError& e) {
    throw Error(where + ": header is not valid JSON: " + e.what() + " (counting from the header's start, file byte 8)");
  }
  ENGINE_CHECK(header.is_object(), where, ": header must be a JSON object, got ", json::kind_name(header.kind()));

  SafetensorsContents contents;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.as_object()) {
    if (name == kMetadataKey) {
      contents.metadata = parse_metadata(where, value);
    } else {
      entries.push_back(parse_entry(where, name, value, data_bytes));
    }
  }

  // 3. The tensors must tile the data buffer: sorted by offset, each begins
  // exactly where the previous one ended, and the last ends at the buffer's end.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;  // bytes [0, covered) belong to the tensors checked so far
  const Entry* previous = nullptr;
  for (const Entry& entry : entries) {
    ENGINE_CHECK(entry.begin >= covered, where, ": tensors ", quoted(previous ? previous->name : ""),
                 " (data_offsets ", offsets_str(previous ? previous->begin : 0, previous ? previous->end : 0),
                 ") and ", quoted(entry.name), " (data_offsets ", offsets_str(entry.begin, entry.end), ") overlap");
    ENGINE_CHECK(entry.begin == covered, where, ": bytes [", covered, ", ", entry.begin,
                 ") of the data buffer belong to no tensor (a hole before tensor ", quoted(entry.name),
                 "); the tensors must cover the buffer exactly");
    covered = entry.end;
    previous = &entry;
  }
  ENGINE_CHECK(covered == data_bytes, where, ": bytes [", covered, ", ", data_bytes,
               ") at the end of the data buffer belong to no tensor; the tensors must cover the buffer exactly");

  // 4. Only now allocate and read, in offset order, straight into the tensors.
  for (const Entry& entry : entries) {
    Tensor tensor = Tensor::empty(entry.shape, entry.dtype, Device::cpu());
    read_or_throw(tensor.raw_data(), tensor.nbytes(), ("tensor " + quoted(entry.name)).c_str());
    contents.tensors.emplace_back(entry.name, std::move(tensor));
  }
  return contents;
}

}  // namespace engine
