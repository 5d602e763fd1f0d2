import Testing
@testable import KVServer

@Test func parsesTheConfigSubset() throws {
    let doc = try TOML.parse("""
        # a comment
        name = "kvd"   # trailing comment
        literal = 'C:\\path'
        [http]
        port = 8_080
        ratio = 0.5
        big = 1e3
        enabled = true
        hosts = [ "a", "b",
          "c", # comment inside
        ]
        [storage.wal]
        mode = "periodic"
        "quoted key" = -12
        inline = { a = 1, b.c = "x" }
        [limits]
        hex = 0xff
        esc = "tab\\there \\u00e9"
        """)
    #expect(doc["name"] == .string("kvd"))
    #expect(doc["literal"] == .string("C:\\path"))
    guard case .table(let http)? = doc["http"] else { Issue.record("no [http]"); return }
    #expect(http["port"] == .integer(8080))
    #expect(http["ratio"] == .float(0.5))
    #expect(http["big"] == .float(1000))
    #expect(http["enabled"] == .boolean(true))
    #expect(http["hosts"] == .array([.string("a"), .string("b"), .string("c")]))
    guard case .table(let storage)? = doc["storage"], case .table(let wal)? = storage["wal"] else { Issue.record("no [storage.wal]"); return }
    #expect(wal["mode"] == .string("periodic"))
    #expect(wal["quoted key"] == .integer(-12))
    #expect(wal["inline"] == .table(["a": .integer(1), "b": .table(["c": .string("x")])]))
    guard case .table(let limits)? = doc["limits"] else { Issue.record("no [limits]"); return }
    #expect(limits["hex"] == .integer(255))
    #expect(limits["esc"] == .string("tab\there é"))
}

@Test func dottedKeysBuildTables() throws {
    let doc = try TOML.parse("a.b.c = 1\na.b.d = 2\n")
    #expect(doc["a"] == .table(["b": .table(["c": .integer(1), "d": .integer(2)])]))
}

@Test func errorsNameTheLine() {
    func line(_ text: String) -> Int? {
        do {
            _ = try TOML.parse(text)
            return nil
        } catch {
            return error.line
        }
    }
    #expect(line("a = 1\nb = \n") == 2)
    #expect(line("a = 1\na = 2\n") == 2)
    #expect(line("[t]\nx=1\n[t]\n") == 3)
    #expect(line("a = \"unterminated\n") == 1)
    #expect(line("\n\n[[arr]]\n") == 3)
    #expect(line("d = 2024-01-01\n") == 1)
    #expect(line("x = 1 2\n") == 1)
    #expect(line("x = [1, 2\n") == 2)
    #expect(line("x = 01\n") == 1)
    #expect(line("x = 1__0\n") == 1)
    #expect(line("a = 1\na.b = 2\n") == 2)
    #expect(line("s = \"bad \\q escape\"\n") == 1)
    #expect(line("= 3\n") == 1)
}
