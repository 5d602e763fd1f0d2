import Glibc
import KVCluster
import KVCore
import KVRuntime
import KVStorage
import KVTransport

extension ServerSettings {
    /// Reads and parses the TOML file at `path`.
    public static func load(path: String) throws(ConfigError) -> ServerSettings {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw .unreadable(path: path, errno: errno) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return try parse(toml: String(decoding: bytes, as: UTF8.self))
    }

    /// Settings from TOML text; keys not present keep their defaults.
    public static func parse(toml text: String) throws(ConfigError) -> ServerSettings {
        let document: [String: TOMLValue]
        do throws(TOMLError) {
            document = try TOML.parse(text)
        } catch {
            throw .syntax(error)
        }
        var root = ConfigTable(path: "", values: document)
        var s = ServerSettings()

        var node = try root.table("node")
        if let v = try node.string("data_dir") { s.dataDirectory = v }
        if let v = try node.string("bind") { s.bindHost = v }
        if let v = try node.int("shutdown_grace_ms", min: 0) { s.shutdownGraceMillis = v }
        if let v = try node.string("log_level") {
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(v) else {
                throw .invalidValue(key: "node.log_level", reason: "must be trace, debug, info, notice, warning, error or critical")
            }
            s.logLevel = v
        }
        try node.finish()

        var http = try root.table("http")
        if let v = try http.int("port", min: 0, max: 65535) { s.http.port = v }
        if let v = try http.int("max_request_line_bytes", min: 64) { s.http.maxRequestLineBytes = v }
        if let v = try http.int("max_header_bytes", min: 256) { s.http.maxHeaderBytes = v }
        if let v = try http.int("max_header_count", min: 1) { s.http.maxHeaderCount = v }
        if let v = try http.int("max_body_bytes", min: 0) { s.http.maxBodyBytes = v }
        if let v = try http.int("request_timeout_ms", min: 1) { s.http.requestTimeoutMillis = v }
        try http.finish()

        var resp = try root.table("resp")
        if let v = try resp.bool("enabled") { s.resp.enabled = v }
        if let v = try resp.int("port", min: 0, max: 65535) { s.resp.port = v }
        if let v = try resp.int("max_arguments", min: 1) { s.resp.maxArguments = v }
        if let v = try resp.int("max_bulk_bytes", min: 1) { s.resp.maxBulkBytes = v }
        if let v = try resp.int("max_inline_bytes", min: 16) { s.resp.maxInlineBytes = v }
        if let v = try resp.int("max_command_bytes", min: 16) { s.resp.maxCommandBytes = v }
        try resp.finish()

        var runtime = try root.table("runtime")
        if let v = try runtime.int("loops", min: 0, max: 4096) { s.runtime.loopCount = v == 0 ? nil : v }
        if let v = try runtime.bool("pin_threads") { s.runtime.pinThreads = v }
        if let v = try runtime.bool("prefer_local_numa_node") { s.runtime.preferLocalNUMANode = v }
        if let v = try runtime.int("idle_spin_us", min: 0) { s.runtime.idleSpin = .microseconds(v) }
        if let v = try runtime.int("jobs_per_tick", min: 1) { s.runtime.jobsPerTick = v }
        if let v = try runtime.int("events_per_poll", min: 1, max: 256) { s.runtime.eventsPerPoll = v }
        try runtime.finish()

        var transport = try root.table("transport")
        if let v = try transport.int("backlog", min: 1) { s.transport.backlog = v }
        if let v = try transport.int("max_connections", min: 1) { s.transport.maxConnections = v }
        if let v = try transport.int("read_chunk_bytes", min: 512) { s.transport.readChunkBytes = v }
        if let v = try transport.int("write_buffer_limit_bytes", min: 4096) { s.transport.writeBufferLimitBytes = v }
        if let v = try transport.int("idle_timeout_ms", min: 0) { s.transport.idleTimeout = v == 0 ? nil : .milliseconds(v) }
        if let v = try transport.int("write_timeout_ms", min: 0) { s.transport.writeTimeout = v == 0 ? nil : .milliseconds(v) }
        if let v = try transport.int("close_linger_ms", min: 0) { s.transport.closeLinger = .milliseconds(v) }
        try transport.finish()

        var limits = try root.table("limits")
        if let v = try limits.int("max_key_bytes", min: 1, max: 1 << 20) { s.limits.maxKeyBytes = v }
        if let v = try limits.int("max_value_bytes", min: 0, max: 64 << 20) { s.limits.maxValueBytes = v }
        try limits.finish()

        var storage = try root.table("storage")
        var periodicMillis = 1000
        if let v = try storage.int("periodic_sync_ms", min: 1) { periodicMillis = v }
        switch try storage.string("commit_mode") {
        case nil, "sync"?: s.storage.commitMode = .sync
        case "periodic"?: s.storage.commitMode = .periodic(milliseconds: periodicMillis)
        case let other?: throw .invalidValue(key: "storage.commit_mode", reason: "must be \"sync\" or \"periodic\", found \"\(other)\"")
        }
        if let v = try storage.int("memtable_bytes", min: 1 << 16) { s.storage.memtableBytes = v }
        if let v = try storage.int("max_frozen_memtables", min: 1) { s.storage.maxFrozenMemtables = v }
        if let v = try storage.int("row_cache_bytes", min: 0) { s.storage.rowCacheBytes = v }
        if let v = try storage.int("block_cache_bytes", min: 0) { s.blockCacheBytes = v }
        if let v = try storage.int("wal_segment_bytes", min: 1 << 16) { s.storage.wal.segmentBytes = v }
        if let v = try storage.bool("background_compaction") { s.storage.backgroundCompaction = v }
        if let v = try storage.bool("prefault_memtable") { s.storage.prefaultMemtable = v }
        try storage.finish()

        var cluster = try root.table("cluster")
        if let v = try cluster.bool("enabled") { s.cluster.enabled = v }
        if let v = try cluster.string("name") {
            guard !v.isEmpty else { throw .invalidValue(key: "cluster.name", reason: "must not be empty") }
            s.cluster.settings.name = v
        }
        if let v = try cluster.string("node_id") {
            guard !v.isEmpty else { throw .invalidValue(key: "cluster.node_id", reason: "must not be empty") }
            s.cluster.nodeID = v
        }
        if let v = try cluster.int("rpc_port", min: 0, max: 65535) { s.cluster.rpcPort = v }
        if let v = try cluster.string("seeds") {
            guard let seeds = ClusterMembership.parseSeeds(v) else {
                throw .invalidValue(key: "cluster.seeds", reason: "must be \"HOST:PORT,HOST:PORT,…\", found \"\(v)\"")
            }
            s.cluster.seeds = seeds
        }
        if let v = try cluster.string("rack") { s.cluster.rack = v.isEmpty ? nil : v }
        if let v = try cluster.int("replication_factor", min: 1, max: 64) { s.cluster.settings.ring.replicationFactor = v }
        if let v = try cluster.int("num_tokens", min: 1, max: 65536) { s.cluster.settings.ring.numTokens = v }
        for (key, path) in [("write_consistency", \ClusterSettings.quorum.writeConsistency), ("read_consistency", \ClusterSettings.quorum.readConsistency)] {
            if let v = try cluster.string(key) {
                guard let level = ConsistencyLevel(parsing: v) else {
                    throw .invalidValue(key: "cluster.\(key)", reason: "must be one, quorum, all, eventual or strong, found \"\(v)\"")
                }
                s.cluster.settings[keyPath: path] = level
            }
        }
        if let v = try cluster.int("write_timeout_ms", min: 1) { s.cluster.settings.quorum.writeTimeoutMillis = UInt64(v) }
        if let v = try cluster.int("read_timeout_ms", min: 1) { s.cluster.settings.quorum.readTimeoutMillis = UInt64(v) }
        if let v = try cluster.bool("blocking_read_repair") { s.cluster.settings.quorum.blockingReadRepair = v }
        if let v = try cluster.int("max_clock_drift_ms", min: 0) { s.cluster.settings.quorum.maxClockDriftMillis = UInt64(v) }
        if let v = try cluster.int("gossip_interval_ms", min: 1) { s.cluster.settings.gossip.intervalMillis = UInt64(v) }
        if let v = try cluster.int("phi_threshold", min: 1, max: 1000) { s.cluster.settings.failureDetector.phiThreshold = Double(v) }
        if let v = try cluster.int("acceptable_heartbeat_pause_ms", min: 0) {
            s.cluster.settings.failureDetector.acceptableHeartbeatPauseMillis = Double(v)
        }
        if let v = try cluster.int("hint_window_ms", min: 0) { s.cluster.settings.hints.windowMillis = UInt64(v) }
        if let v = try cluster.int("max_hints_per_target", min: 0) { s.cluster.settings.hints.maxHintsPerTarget = v }
        if let v = try cluster.int("hint_delivery_interval_ms", min: 1) { s.cluster.settings.hints.deliveryIntervalMillis = UInt64(v) }
        try cluster.finish()

        try root.finish()
        return s
    }
}

extension ClusterMembership {
    /// Parses `HOST:PORT,HOST:PORT,…` (empty: no seeds); nil when an entry is malformed.
    public static func parseSeeds(_ text: String) -> [KVCluster.NodeAddress]? {
        var seeds: [KVCluster.NodeAddress] = []
        for part in text.split(separator: ",") {
            let trimmed = part.trimmingSpaces()
            if trimmed.isEmpty { continue }
            guard let address = KVCluster.NodeAddress(parsing: trimmed) else { return nil }
            seeds.append(address)
        }
        return seeds
    }
}
