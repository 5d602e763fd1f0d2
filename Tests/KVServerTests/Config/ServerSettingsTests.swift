import Foundation
import KVCore
import KVStorage
import KVCluster
import Testing
@testable import KVServer

/// The repository's example config, found from this file's path.
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

@Test func theDocumentedConfigHoldsTheRealDefaults() throws {
    let settings = try ServerSettings.load(path: packageRoot.appendingPathComponent("Configs/single.toml").path)
    #expect(settings == ServerSettings())
}

@Test func settingsOverrideDefaults() throws {
    let s = try ServerSettings.parse(toml: """
        [node]
        data_dir = "/var/lib/kvd"
        [http]
        port = 9000
        [resp]
        enabled = false
        [runtime]
        loops = 4
        [transport]
        idle_timeout_ms = 0
        [limits]
        max_value_bytes = 4096
        [storage]
        commit_mode = "periodic"
        periodic_sync_ms = 250
        """)
    #expect(s.dataDirectory == "/var/lib/kvd")
    #expect(s.http.port == 9000)
    #expect(s.resp.enabled == false)
    #expect(s.runtime.loopCount == 4)
    #expect(s.transport.idleTimeout == nil)
    #expect(s.limits.maxValueBytes == 4096)
    #expect(s.effectiveStorage(shards: 4).limits.maxValueBytes == 4096)
    #expect(s.storage.commitMode == .periodic(milliseconds: 250))
}

@Test func blockCacheIsTheNodesSplitAcrossShards() throws {
    // Automatic: an eighth of memory, between 16 MiB and 1 GiB.
    #expect(ServerSettings.automaticBlockCacheBytes(physicalMemoryBytes: 24 << 30) == 1 << 30)
    #expect(ServerSettings.automaticBlockCacheBytes(physicalMemoryBytes: 4 << 30) == 512 << 20)
    #expect(ServerSettings.automaticBlockCacheBytes(physicalMemoryBytes: 64 << 20) == 16 << 20)
    #expect(ServerSettings.automaticBlockCacheBytes(physicalMemoryBytes: 0) == 16 << 20)
    #expect(ServerSettings.physicalMemoryBytes() > 0)
    let automatic = ServerSettings.automaticBlockCacheBytes(physicalMemoryBytes: ServerSettings.physicalMemoryBytes())
    #expect(ServerSettings().effectiveStorage(shards: 2).tables.blockCacheBytes == automatic / 2)
    // Set in the file: the node's total, each shard a share; 0 turns it off.
    let set = try ServerSettings.parse(toml: "[storage]\nblock_cache_bytes = 400000000\n")
    #expect(set.blockCacheBytes == 400_000_000)
    #expect(set.effectiveStorage(shards: 4).tables.blockCacheBytes == 100_000_000)
    let off = try ServerSettings.parse(toml: "[storage]\nblock_cache_bytes = 0\n")
    #expect(off.effectiveStorage(shards: 3).tables.blockCacheBytes == 0)
}

@Test func configErrorsNameTheSetting() {
    func error(_ text: String) -> ConfigError? {
        do {
            _ = try ServerSettings.parse(toml: text)
            return nil
        } catch {
            return error
        }
    }
    #expect(error("[http]\nprot = 1\n") == .unknownKey("http.prot"))
    #expect(error("[nope]\n") == .unknownKey("nope"))
    #expect(error("[http]\nport = \"80\"\n") == .wrongType(key: "http.port", expected: "an integer", found: "string"))
    #expect(error("[http]\nport = 70000\n") == .invalidValue(key: "http.port", reason: "must be between 0 and 65535, found 70000"))
    #expect(error("[storage]\ncommit_mode = \"always\"\n") != nil)
    #expect(error("[node]\nlog_level = \"loud\"\n") != nil)
    if case .syntax(let e)? = error("a = 1\n[http\n") { #expect(e.line == 2) } else { Issue.record("expected a syntax error") }
}

@Test func shardRoutingCoversTheRingEvenly() {
    #expect(Shard.index(of: .min, count: 4) == 0)
    #expect(Shard.index(of: .max, count: 4) == 3)
    #expect(Shard.index(of: Token(rawValue: 1 << 63), count: 2) == 1)
    #expect(Shard.index(of: Token(rawValue: (1 << 63) - 1), count: 2) == 0)
    var counts = [0, 0, 0]
    for i in 0..<3000 { counts[Shard.index(of: Key("key:\(i)").token, count: 3)] += 1 }
    #expect(counts.allSatisfy { $0 > 800 && $0 < 1200 })
}

@Test func aDataDirectoryKeepsItsShardCount() async throws {
    let dir = TempDirectory()
    defer { dir.remove() }
    try ShardLayout.check(dataDirectory: dir.path, shardCount: 2)
    try ShardLayout.check(dataDirectory: dir.path, shardCount: 2)
    #expect(throws: KVError.self) { try ShardLayout.check(dataDirectory: dir.path, shardCount: 3) }
}
