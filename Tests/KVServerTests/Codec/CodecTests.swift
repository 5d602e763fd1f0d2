import KVCore
import Testing
@testable import KVServer

@Test func base64RoundTripsAndIsStrict() {
    var rng = SplitMix64(seed: 7)
    for n in 0..<200 {
        let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let text = Base64.encode(bytes)
        #expect(Base64.decode(text) == bytes)
    }
    #expect(Base64.encode(Array("hello".utf8)) == Array("aGVsbG8=".utf8))
    #expect(Base64.decode(Array("aGVsbG8".utf8)) == nil)
    #expect(Base64.decode(Array("aGVsbG9=".utf8)) == nil)  // non-zero unused bits
    #expect(Base64.decode(Array("aGV*bG8=".utf8)) == nil)
    #expect(Base64.decode(Array("=AAA".utf8)) == nil)
    #expect(Base64.decode(Array("".utf8)) == [])
}

@Test func jsonParsesTheItemShapes() throws {
    let v = try JSONValue.parse(Array(#"{"key":"user:1","value":"aGk=","ttl":60,"x":[1,2.5,true,null,{"a":"\u00e9\ud83d\ude00\n"}]}"#.utf8))
    let o = try #require(v.objectValue)
    #expect(o["key"] == .string("user:1"))
    #expect(o["ttl"] == .integer(60))
    #expect(o["x"] == .array([.integer(1), .number(2.5), .bool(true), .null, .object(["a": .string("é😀\n")])]))
}

@Test func jsonRejectsMalformedDocuments() {
    for bad in ["", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "{\"a\":1}x", "\"\\ud800\"", "01", "1.", "\"\u{01}\"", "tru",
                String(repeating: "[", count: 100) + String(repeating: "]", count: 100)] {
        #expect(throws: JSONValue.SyntaxError.self) { try JSONValue.parse(Array(bad.utf8)) }
    }
}

@Test func jsonWriterEscapes() {
    var w = JSONWriter()
    w.beginObject()
    w.key("k"); w.string("a\"b\\c\n\u{01}")
    w.key("n"); w.integer(UInt64(42))
    w.key("b"); w.bool(true)
    w.endObject()
    #expect(String(decoding: w.bytes, as: UTF8.self) == #"{"k":"a\"b\\c\n\u0001","n":42,"b":true}"#)
}

@Test func decimalsRoundTrip() {
    for n in [0, 1, 9, 10, 99, 100, 12345, -1, -987, Int.max, Int.min + 1] {
        var out: [UInt8] = []
        appendDecimal(n, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == String(n))
        #expect(parseDecimal(out) == Int64(n))
    }
    #expect(parseDecimal(Array("12a".utf8)) == nil)
    #expect(parseDecimal(Array("".utf8)) == nil)
    #expect(parseDecimal(Array("-".utf8)) == nil)
    #expect(parseDecimal(Array("99999999999999999999".utf8)) == nil)
}

@Test func percentDecoding() {
    #expect(QueryString.decode("a%20b+c%2F") == Array("a b c/".utf8))
    #expect(QueryString.decode("bad%2") == nil)
    #expect(QueryString.decode("bad%zz") == nil)
    let q = QueryString.parse("key=user%3A1&consistency=strong&flag")
    #expect(q?["key"] == Array("user:1".utf8))
    #expect(q?["consistency"] == Array("strong".utf8))
    #expect(q?["flag"] == [])
}
