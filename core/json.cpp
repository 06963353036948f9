// A strict JSON parser (recursive descent, one function per grammar rule)
// and a printer. See core/json.h for what is accepted.
#include "core/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>
#include <unordered_set>

namespace engine::json {

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::Null: return "null";
    case Kind::Bool: return "bool";
    case Kind::Int: return "integer";
    case Kind::Number: return "number";
    case Kind::String: return "string";
    case Kind::Array: return "array";
    case Kind::Object: return "object";
  }
  return "?";
}

// --- Value ------------------------------------------------------------------------

namespace {
[[noreturn]] void wrong_kind(const char* expected, Kind found) {
  throw Error(detail::concat_message("JSON: expected ", expected, ", got ", kind_name(found)));
}
}  // namespace

bool Value::as_bool() const {
  if (!is_bool()) wrong_kind("bool", kind());
  return std::get<bool>(data_);
}

int64_t Value::as_int() const {
  if (!is_int()) wrong_kind("integer", kind());
  return std::get<int64_t>(data_);
}

double Value::as_double() const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(data_));
  if (kind() != Kind::Number) wrong_kind("number", kind());
  return std::get<double>(data_);
}

const std::string& Value::as_string() const {
  if (!is_string()) wrong_kind("string", kind());
  return std::get<std::string>(data_);
}

const Elements& Value::as_array() const {
  if (!is_array()) wrong_kind("array", kind());
  return std::get<Elements>(data_);
}

Elements& Value::as_array() {
  if (!is_array()) wrong_kind("array", kind());
  return std::get<Elements>(data_);
}

const Members& Value::as_object() const {
  if (!is_object()) wrong_kind("object", kind());
  return std::get<Members>(data_);
}

Members& Value::as_object() {
  if (!is_object()) wrong_kind("object", kind());
  return std::get<Members>(data_);
}

const Value* Value::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [name, value] : std::get<Members>(data_))
    if (name == key) return &value;
  return nullptr;
}

Value& Value::set(const std::string& key, Value value) {
  if (is_null()) data_ = Members{};
  Members& members = as_object();
  for (auto& [name, existing] : members)
    if (name == key) return existing = std::move(value);
  members.emplace_back(key, std::move(value));
  return members.back().second;
}

void Value::push_back(Value value) {
  if (is_null()) data_ = Elements{};
  as_array().push_back(std::move(value));
}

ParseError::ParseError(std::size_t position, const std::string& message)
    : Error(detail::concat_message("JSON parse error at byte ", position, ": ", message)), position_(position) {}

// --- UTF-8 --------------------------------------------------------------------------

namespace {

// Length of the well-formed UTF-8 sequence that starts at text[pos], or 0 if
// the bytes there are not one (Unicode 15, table 3-7: no overlong forms, no
// surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view text, std::size_t pos) {
  const auto byte = [&](std::size_t i) -> unsigned {
    return pos + i < text.size() ? static_cast<unsigned char>(text[pos + i]) : 0u;
  };
  const unsigned lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length;
  unsigned second_lo = 0x80, second_hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_lo = 0xA0;  // overlong
    if (lead == 0xED) second_hi = 0x9F;  // UTF-16 surrogates U+D800..U+DFFF
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_lo = 0x90;  // overlong
    if (lead == 0xF4) second_hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, or C0/C1/F5..FF which never occur
  }
  if (byte(1) < second_lo || byte(1) > second_hi) return 0;
  for (std::size_t i = 2; i < length; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return length;
}

// Appends code point `cp` (at most U+10FFFF, not a surrogate) as UTF-8.
void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// --- Parser ---------------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Value parse_document() {
    skip_whitespace();
    Value value = parse_value(0);
    skip_whitespace();
    if (!at_end()) expected("end of input after the value");
    return value;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  // What is at the current position, for error messages.
  std::string describe_here() const {
    if (at_end()) return "end of input";
    const auto c = static_cast<unsigned char>(text_[pos_]);
    if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    char hex[16];
    std::snprintf(hex, sizeof hex, "byte 0x%02X", c);
    return hex;
  }

  [[noreturn]] void fail_at(std::size_t position, const std::string& message) const {
    throw ParseError(position, message);
  }
  [[noreturn]] void expected(const std::string& what) const {
    fail_at(pos_, "expected " + what + ", got " + describe_here());
  }

  // JSON whitespace is exactly space, tab, line feed and carriage return.
  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  Value parse_value(int depth) {
    switch (peek()) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return parse_string();
      case 't': parse_literal("true"); return true;
      case 'f': parse_literal("false"); return false;
      case 'n': parse_literal("null"); return nullptr;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        expected("a value (object, array, string, number, true, false or null)");
    }
  }

  void parse_literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) expected(detail::concat_message("'", word, "'"));
    pos_ += word.size();
  }

  void enter(int depth) const {
    if (depth >= kMaxDepth)
      fail_at(pos_, detail::concat_message("arrays/objects nested deeper than ", kMaxDepth, " levels"));
  }

  // object = '{' [ string ':' value { ',' string ':' value } ] '}'
  Value parse_object(int depth) {
    enter(depth);
    ++pos_;  // '{'
    Members members;
    std::unordered_set<std::string> keys;
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      return members;
    }
    while (true) {
      skip_whitespace();
      if (peek() != '"') expected("a string key");
      const std::size_t key_position = pos_;
      std::string key = parse_string().as_string();
      if (!keys.insert(key).second) fail_at(key_position, "duplicate key " + quote(key) + " in an object");
      skip_whitespace();
      if (peek() != ':') expected("':' after an object key");
      ++pos_;
      skip_whitespace();
      Value value = parse_value(depth + 1);
      members.emplace_back(std::move(key), std::move(value));
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() == '}') {
        ++pos_;
        return members;
      } else {
        expected("',' or '}' after an object member");
      }
    }
  }

  // array = '[' [ value { ',' value } ] ']'
  Value parse_array(int depth) {
    enter(depth);
    ++pos_;  // '['
    Elements elements;
    skip_whitespace();
    if (peek() == ']') {
      ++pos_;
      return elements;
    }
    while (true) {
      skip_whitespace();
      elements.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() == ']') {
        ++pos_;
        return elements;
      } else {
        expected("',' or ']' after an array element");
      }
    }
  }

  // Four hex digits after "\u", as a UTF-16 code unit.
  uint32_t parse_hex4() {
    uint32_t unit = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      uint32_t digit;
      if (c >= '0' && c <= '9') digit = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') digit = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') digit = static_cast<uint32_t>(c - 'A' + 10);
      else expected("a hex digit in a \\u escape");
      unit = unit * 16 + digit;
      ++pos_;
    }
    return unit;
  }

  // string = '"' { char | escape } '"'. Returns the decoded UTF-8 text.
  Value parse_string() {
    ++pos_;  // opening '"'
    std::string out;
    while (true) {
      if (at_end()) expected("'\"' to end the string");
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) expected("a character (control characters in strings must be escaped)");
      if (c == '\\') {
        parse_escape(out);
      } else if (c < 0x80) {
        out += static_cast<char>(c);
        ++pos_;
      } else {
        const std::size_t length = utf8_sequence_length(text_, pos_);
        if (length == 0) expected("valid UTF-8");
        out.append(text_.substr(pos_, length));
        pos_ += length;
      }
    }
  }

  // escape = '\' ( '"' | '\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u' hex4 )
  void parse_escape(std::string& out) {
    const std::size_t escape_position = pos_;
    ++pos_;  // '\'
    const char c = peek();
    switch (c) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        ++pos_;
        uint32_t cp = parse_hex4();
        // Code points above U+FFFF are written as a UTF-16 surrogate pair:
        // \uD83D\uDE00 = 0x10000 + ((0xD83D - 0xD800) << 10) + (0xDE00 - 0xDC00).
        if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(escape_position, "lone low surrogate in a \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (text_.substr(pos_, 2) != "\\u") expected("a \\u escape with the low surrogate after a high surrogate");
          pos_ += 2;
          const uint32_t low = parse_hex4();
          if (low < 0xDC00 || low > 0xDFFF)
            fail_at(pos_ - 6, "expected a low surrogate (\\uDC00..\\uDFFF) after a high surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, cp);
        return;  // pos_ is already past the digits
      }
      default: expected("an escape character (\" \\ / b f n r t u) after '\\'");
    }
    ++pos_;
  }

  // number = [ '-' ] ( '0' | [1-9][0-9]* ) [ '.' [0-9]+ ] [ ( 'e' | 'E' ) [ '+' | '-' ] [0-9]+ ]
  Value parse_number() {
    const std::size_t start = pos_;
    const auto digit = [&] { return peek() >= '0' && peek() <= '9'; };
    const auto digits = [&](const char* where) {
      if (!digit()) expected(std::string("a digit ") + where);
      while (digit()) ++pos_;
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;  // a leading zero stands alone: "012" is not a number
    } else {
      digits("in the number");
    }
    bool is_integer = true;
    if (peek() == '.') {
      ++pos_;
      digits("after the decimal point");
      is_integer = false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      digits("in the exponent");
      is_integer = false;
    }
    const std::string_view token = text_.substr(start, pos_ - start);
    const char* first = token.data();
    const char* last = token.data() + token.size();
    if (is_integer) {
      int64_t value = 0;
      const auto [end, error] = std::from_chars(first, last, value);
      if (error == std::errc::result_out_of_range)
        fail_at(start, "integer " + std::string(token) + " does not fit in 64 bits (int64)");
      ENGINE_ASSERT(error == std::errc() && end == last);
      return value;
    }
    double value = 0.0;
    const auto [end, error] = std::from_chars(first, last, value);
    if (error == std::errc::result_out_of_range)
      fail_at(start, "number " + std::string(token) + " is out of the range of a double");
    ENGINE_ASSERT(error == std::errc() && end == last);
    return value;
  }
};

}  // namespace

Value parse(std::string_view text) { return Parser(text).parse_document(); }

// --- Writer ---------------------------------------------------------------------------

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04X", c);
          out += escape;
        } else if (c >= 0x80) {
          // Multi-byte UTF-8 passes through, but only when well-formed: we
          // never write what parse() would reject.
          const std::size_t length = utf8_sequence_length(text, i);
          ENGINE_CHECK(length > 0, "JSON: string has invalid UTF-8 at byte ", i);
          out.append(text.substr(i, length));
          i += length;
          continue;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out + "\"";
}

namespace {

void append_double(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";  // JSON has no NaN or infinity
    return;
  }
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);  // shortest round trip
  ENGINE_ASSERT(error == std::errc());
  const std::string_view text(buffer, static_cast<std::size_t>(end - buffer));
  out += text;
  // "100" would read back as an integer; keep it a double.
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void append_newline(std::string& out, int indent, int level) {
  if (indent < 0) return;
  out += '\n';
  out.append(static_cast<std::size_t>(indent) * static_cast<std::size_t>(level), ' ');
}

void append_value(std::string& out, const Value& value, int indent, int level) {
  switch (value.kind()) {
    case Kind::Null: out += "null"; return;
    case Kind::Bool: out += value.as_bool() ? "true" : "false"; return;
    case Kind::Int: out += std::to_string(value.as_int()); return;
    case Kind::Number: append_double(out, value.as_double()); return;
    case Kind::String: out += quote(value.as_string()); return;
    case Kind::Array: {
      const Elements& elements = value.as_array();
      out += '[';
      for (std::size_t i = 0; i < elements.size(); ++i) {
        if (i) out += ',';
        append_newline(out, indent, level + 1);
        append_value(out, elements[i], indent, level + 1);
      }
      if (!elements.empty()) append_newline(out, indent, level);
      out += ']';
      return;
    }
    case Kind::Object: {
      const Members& members = value.as_object();
      out += '{';
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (i) out += ',';
        append_newline(out, indent, level + 1);
        out += quote(members[i].first);
        out += indent < 0 ? ":" : ": ";
        append_value(out, members[i].second, indent, level + 1);
      }
      if (!members.empty()) append_newline(out, indent, level);
      out += '}';
      return;
    }
  }
}

}  // namespace

std::string dump(const Value& value, int indent) {
  std::string out;
  append_value(out, value, indent, 0);
  return out;
}

}  // namespace engine::json
