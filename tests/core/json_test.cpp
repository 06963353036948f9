// The strict JSON parser and writer: values, escapes, nesting, integer range,
// the errors (with their byte positions), and print/parse round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "core/json.h"

namespace engine {
namespace {

using json::Kind;
using json::Value;

// Parses `text`, which must fail, and checks the position and the message.
void expect_parse_error(const std::string& text, std::size_t position, const std::string& fragment) {
  SCOPED_TRACE("input: " + text);
  try {
    json::parse(text);
    FAIL() << "expected a parse error";
  } catch (const json::ParseError& e) {
    EXPECT_EQ(e.position(), position) << e.what();
    const std::string message = e.what();
    EXPECT_NE(message.find("JSON parse error at byte " + std::to_string(position) + ": "), std::string::npos)
        << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(Json, Scalars) {
  EXPECT_TRUE(json::parse("null").is_null());
  EXPECT_EQ(json::parse("true").as_bool(), true);
  EXPECT_EQ(json::parse("false").as_bool(), false);
  EXPECT_EQ(json::parse(" \t\r\n42 \n").as_int(), 42);  // the four whitespace characters
  EXPECT_EQ(json::parse("-7").as_int(), -7);
  EXPECT_EQ(json::parse("0").as_int(), 0);
  EXPECT_EQ(json::parse("\"hi\"").as_string(), "hi");

  // A fraction or exponent makes a double, even when the value is whole.
  EXPECT_EQ(json::parse("1e2").kind(), Kind::Number);
  EXPECT_EQ(json::parse("1e2").as_double(), 100.0);
  EXPECT_EQ(json::parse("1.0").kind(), Kind::Number);
  EXPECT_EQ(json::parse("0.5").as_double(), 0.5);
  EXPECT_EQ(json::parse("-1.5E-3").as_double(), -1.5e-3);
  EXPECT_EQ(json::parse("2.5e+3").as_double(), 2500.0);
  // as_double accepts integers; as_int does not accept doubles.
  EXPECT_EQ(json::parse("3").as_double(), 3.0);
  EXPECT_THROW(json::parse("3.0").as_int(), Error);
}

TEST(Json, IntegersAreExactInt64) {
  EXPECT_EQ(json::parse("9223372036854775807").as_int(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(json::parse("-9223372036854775808").as_int(), std::numeric_limits<int64_t>::min());
  // 2^53 + 1 is not representable as a double; as an integer it survives.
  EXPECT_EQ(json::parse("9007199254740993").as_int(), int64_t{9007199254740993});
}

TEST(Json, IntegerOverflowIsAnError) {
  expect_parse_error("9223372036854775808", 0, "integer 9223372036854775808 does not fit in 64 bits");
  expect_parse_error("-9223372036854775809", 0, "does not fit in 64 bits");
  expect_parse_error("[1, 99999999999999999999]", 4, "does not fit in 64 bits");
  expect_parse_error("1e400", 0, "out of the range of a double");
}

TEST(Json, StringEscapes) {
  EXPECT_EQ(json::parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(json::parse(R"("\u0041\u00e9\u20AC")").as_string(), "A\xC3\xA9\xE2\x82\xAC");  // A é €
  EXPECT_EQ(json::parse(R"("\u0000")").as_string(), std::string(1, '\0'));
  // U+1F600 as a UTF-16 surrogate pair becomes one 4-byte UTF-8 sequence.
  EXPECT_EQ(json::parse(R"("\uD83D\uDE00")").as_string(), "\xF0\x9F\x98\x80");
  // Raw UTF-8 passes through unchanged.
  EXPECT_EQ(json::parse("\"\xC3\xA9\xF0\x9F\x98\x80\"").as_string(), "\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(Json, BadStringsAreErrors) {
  expect_parse_error(R"("\x")", 2, "expected an escape character");
  expect_parse_error(R"("\u12G4")", 5, "expected a hex digit");
  expect_parse_error(R"("\uDE00")", 1, "lone low surrogate");
  expect_parse_error(R"("\uD83D")", 7, "low surrogate");
  expect_parse_error(R"("\uD83D\u0041")", 7, "expected a low surrogate");
  expect_parse_error("\"a\nb\"", 2, "control characters in strings must be escaped");
  expect_parse_error("\"abc", 4, "expected '\"' to end the string, got end of input");
  expect_parse_error("\"\xFF\"", 1, "valid UTF-8");          // never a UTF-8 byte
  expect_parse_error("\"\xC0\x80\"", 1, "valid UTF-8");      // overlong NUL
  expect_parse_error("\"\xED\xA0\x80\"", 1, "valid UTF-8");  // an encoded surrogate
  expect_parse_error("\"\xE2\x82\"", 1, "valid UTF-8");      // cut short
}

TEST(Json, Nesting) {
  const Value v = json::parse(R"({"a": [1, {"b": []}, {}], "c": {"d": null, "e": "x"}})");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.as_object().size(), 2u);
  EXPECT_EQ(v.as_object()[0].first, "a");  // document order is kept
  EXPECT_EQ(v.as_object()[1].first, "c");
  const json::Elements& a = v.find("a")->as_array();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].as_int(), 1);
  EXPECT_TRUE(a[1].find("b")->as_array().empty());
  EXPECT_TRUE(a[2].as_object().empty());
  EXPECT_TRUE(v.find("c")->find("d")->is_null());
  EXPECT_EQ(v.find("c")->find("e")->as_string(), "x");
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(a[0].find("a"), nullptr);  // not an object
}

TEST(Json, NestingDepthIsLimited) {
  const int limit = json::kMaxDepth;
  const std::string ok = std::string(limit, '[') + std::string(limit, ']');
  EXPECT_NO_THROW(json::parse(ok));
  const std::string deep = std::string(limit + 1, '[') + std::string(limit + 1, ']');
  expect_parse_error(deep, static_cast<std::size_t>(limit), "nested deeper than");
}

TEST(Json, SyntaxErrorsNamePositionAndExpectation) {
  expect_parse_error("", 0, "expected a value (object, array, string, number, true, false or null), got end of input");
  expect_parse_error("[1,]", 3, "expected a value");
  expect_parse_error(R"({"a":1,})", 7, "expected a string key, got '}'");
  expect_parse_error(R"({"a" 1})", 5, "expected ':' after an object key, got '1'");
  expect_parse_error("[1 2]", 3, "expected ',' or ']' after an array element, got '2'");
  expect_parse_error(R"({"a":1 "b":2})", 7, "expected ',' or '}' after an object member");
  expect_parse_error("01", 1, "expected end of input after the value, got '1'");  // no leading zeros
  expect_parse_error("[1] x", 4, "expected end of input");
  expect_parse_error("tru", 0, "expected 'true'");
  expect_parse_error("-", 1, "expected a digit in the number");
  expect_parse_error("1.", 2, "expected a digit after the decimal point");
  expect_parse_error(".5", 0, "expected a value");
  expect_parse_error("1e", 2, "expected a digit in the exponent");
  expect_parse_error("NaN", 0, "expected a value");
  expect_parse_error("// comment\n1", 0, "expected a value");
  expect_parse_error("\f1", 0, "got byte 0x0C");  // form feed is not JSON whitespace
  expect_parse_error("{1:2}", 1, "expected a string key");
  expect_parse_error(R"({"a":1,"a":2})", 7, "duplicate key \"a\"");
}

TEST(Json, EveryProperPrefixIsAnError) {
  const std::string text = R"({"a": [1, -2.5e3, "x\u00e9\n"], "b": {"c": true, "d": null}})";
  EXPECT_NO_THROW(json::parse(text));
  for (std::size_t length = 0; length < text.size(); ++length)
    EXPECT_THROW(json::parse(text.substr(0, length)), json::ParseError) << text.substr(0, length);
}

TEST(Json, DumpCompactAndIndented) {
  Value v;
  v.set("name", "run \"1\"");
  v.set("steps", 1200);
  v.set("loss", 0.25);
  Value list;
  list.push_back(1);
  list.push_back(true);
  list.push_back(nullptr);
  v.set("list", list);
  v.set("empty", json::Members{});
  EXPECT_EQ(json::dump(v), R"({"name":"run \"1\"","steps":1200,"loss":0.25,"list":[1,true,null],"empty":{}})");
  EXPECT_EQ(json::dump(v, 2),
            "{\n"
            "  \"name\": \"run \\\"1\\\"\",\n"
            "  \"steps\": 1200,\n"
            "  \"loss\": 0.25,\n"
            "  \"list\": [\n"
            "    1,\n"
            "    true,\n"
            "    null\n"
            "  ],\n"
            "  \"empty\": {}\n"
            "}");
  // set() replaces in place, keeping the key's position.
  v.set("steps", 1300);
  EXPECT_EQ(v.as_object()[1].first, "steps");
  EXPECT_EQ(v.find("steps")->as_int(), 1300);
}

TEST(Json, DumpEscapes) {
  EXPECT_EQ(json::quote("a\"b\\c\n\t\x01\x1F/\xC3\xA9"), "\"a\\\"b\\\\c\\n\\t\\u0001\\u001F/\xC3\xA9\"");
  EXPECT_THROW(json::quote("bad \xFF byte"), Error);  // we never write invalid UTF-8
}

TEST(Json, DoublesPrintShortestAndRoundTripBitExact) {
  EXPECT_EQ(json::dump(Value(0.1)), "0.1");
  EXPECT_EQ(json::dump(Value(100.0)), "100.0");  // stays a double when read back
  EXPECT_EQ(json::dump(Value(1e300)), "1e+300");
  EXPECT_EQ(json::dump(Value(std::nan(""))), "null");
  EXPECT_EQ(json::dump(Value(std::numeric_limits<double>::infinity())), "null");
  for (double d : {1.0 / 3.0, -0.0, 5e-324, 1.7976931348623157e308, 123456.789, -2.5e-7}) {
    const Value back = json::parse(json::dump(Value(d)));
    ASSERT_EQ(back.kind(), Kind::Number) << json::dump(Value(d));
    const double parsed = back.as_double();
    EXPECT_EQ(std::memcmp(&parsed, &d, sizeof d), 0) << json::dump(Value(d));
  }
}

TEST(Json, ParsePrintRoundTrip) {
  // Compact canonical text prints back byte for byte ...
  const std::string text =
      R"({"a":[1,-2,0.5,"x\ny",{"b":null,"c":[true,false]}],"\u00e9":"\ud83d\ude00","n":-9223372036854775808})";
  const Value v = json::parse(text);
  const std::string printed = json::dump(v);
  EXPECT_EQ(printed,
            "{\"a\":[1,-2,0.5,\"x\\ny\",{\"b\":null,\"c\":[true,false]}],\"\xC3\xA9\":\"\xF0\x9F\x98\x80\","
            "\"n\":-9223372036854775808}");
  // ... and the value survives print -> parse, compact and indented.
  EXPECT_EQ(json::parse(printed), v);
  EXPECT_EQ(json::parse(json::dump(v, 4)), v);
}

TEST(Json, AccessorsCheckTheKind) {
  const Value v = json::parse(R"({"a": [1]})");
  try {
    v.as_string();
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "JSON: expected string, got object");
  }
  EXPECT_THROW(v.find("a")->as_object(), Error);
  EXPECT_THROW(v.as_bool(), Error);
  EXPECT_THROW(v.as_double(), Error);
  EXPECT_THROW(Value("x").push_back(1), Error);
  EXPECT_THROW(Value(1).set("k", 2), Error);
}

}  // namespace
}  // namespace engine
