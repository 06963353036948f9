// A small, strict JSON (RFC 8259) parser and writer.
//
// Used for the safetensors header (core/safetensors.cpp) and for the run
// reports the apps write (metrics.json). It accepts exactly the JSON grammar:
//   value   = object | array | string | number | true | false | null
//   object  = '{' [ string ':' value { ',' string ':' value } ] '}'
//   array   = '[' [ value { ',' value } ] ']'
//   number  = [ '-' ] int [ frac ] [ exp ]     int = '0' | [1-9][0-9]*
//   string  = '"' { char | escape } '"'        escape = \" \\ \/ \b \f \n \r \t \uXXXX
// and nothing else: no comments, no trailing commas, no leading zeros, no
// NaN/Infinity, no raw control characters or invalid UTF-8 inside strings,
// no duplicate keys in an object, nothing but whitespace after the value.
//
// Numbers: a number written without fraction or exponent ("42", "-7") is an
// integer and is kept exactly as int64 (it is an error if it does not fit);
// any other number ("0.5", "1e3") is a double. Objects keep their keys in
// the order they were written, so a document prints back the way it came.
//
// Errors: parse() throws json::ParseError (an engine::Error) whose message
// names the byte position and what was expected there, e.g.
//   JSON parse error at byte 12: expected ',' or '}' after an object member, got 'x'
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/error.h"

namespace engine::json {

class Value;
using Elements = std::vector<Value>;                       // of an array
using Members = std::vector<std::pair<std::string, Value>>;  // of an object: in document order, keys unique

enum class Kind { Null, Bool, Int, Number, String, Array, Object };

// "null", "bool", "integer", "number", "string", "array", "object".
const char* kind_name(Kind kind);

// One JSON value: a tagged union of the seven kinds above.
class Value {
 public:
  // Implicit from the C++ value; other integer types (size_t, unsigned) are
  // ambiguous on purpose: cast them to int64_t.
  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : data_(b) {}
  Value(int i) : data_(static_cast<int64_t>(i)) {}
  Value(int64_t i) : data_(i) {}
  Value(double d) : data_(d) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(Elements a) : data_(std::move(a)) {}
  Value(Members o) : data_(std::move(o)) {}

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_null() const { return kind() == Kind::Null; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_number() const { return kind() == Kind::Int || kind() == Kind::Number; }  // int or double
  bool is_string() const { return kind() == Kind::String; }
  bool is_array() const { return kind() == Kind::Array; }
  bool is_object() const { return kind() == Kind::Object; }

  // Accessors throw engine::Error ("JSON: expected string, got array")
  // when the value is of another kind. as_double() accepts integers too.
  bool as_bool() const;
  int64_t as_int() const;
  double as_double() const;
  const std::string& as_string() const;
  const Elements& as_array() const;
  Elements& as_array();
  const Members& as_object() const;
  Members& as_object();

  // Object lookup: the value under `key`, or nullptr when the key is absent
  // (or this is not an object). Linear in the number of keys.
  const Value* find(std::string_view key) const;
  // Object building: replaces the value under `key`, or appends the pair.
  // A null Value becomes an empty object first.
  Value& set(const std::string& key, Value value);
  // Array building: appends. A null Value becomes an empty array first.
  void push_back(Value value);

  bool operator==(const Value& other) const { return data_ == other.data_; }

 private:
  // The alternatives are in the order of Kind, so index() is the kind.
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Elements, Members> data_;
};

class ParseError : public Error {
 public:
  ParseError(std::size_t position, const std::string& message);
  std::size_t position() const { return position_; }  // byte offset into the text

 private:
  std::size_t position_;
};

// Parses a complete document. Nesting deeper than kMaxDepth arrays/objects is
// rejected (so that a hostile file cannot overflow the stack).
constexpr int kMaxDepth = 256;
Value parse(std::string_view text);

// Prints a value. indent < 0: compact, no spaces ({"a":[1,2]}); indent >= 0:
// one member per line, nested levels indented by `indent` more spaces.
// Doubles print in the shortest form that parses back to the same bits
// (always with a '.' or exponent, so they stay doubles); NaN and infinities,
// which JSON cannot express, print as null. Strings are escaped (\" \\ and
// control characters); other UTF-8 passes through unchanged.
std::string dump(const Value& value, int indent = -1);

// The JSON string literal for `text`, quotes included: "a\"b" -> "\"a\\\"b\"".
std::string quote(std::string_view text);

}  // namespace engine::json
