import Foundation
import KVCore
@testable import KVStorage

/// A fresh directory under the system temp dir, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String = "tables") {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("kvd-\(label)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Deterministic pseudo-random test data from KVCore's seedable generator.
typealias TestRandom = SplitMix64

extension SplitMix64 {
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}

/// Entries sorted in the engine's order, one per key.
func sortedEntries(_ entries: some Sequence<Entry>) -> [Entry] {
    entries.sorted { Entry.precedes(($0.token, $0.key), ($1.token, $1.key)) }
}

/// Drains a sorted source into an array.
func drain(_ source: inout some SortedEntrySource) throws -> [Entry] {
    var out: [Entry] = []
    while let entry = try source.next() { out.append(entry) }
    return out
}

/// Writes `entries` (already sorted) to a new SSTable at `path`.
@discardableResult
func writeTable(_ entries: [Entry], to path: String, settings: TableSettings = .default, createdAt: UInt64 = 1)
    throws -> SSTableMetadata
{
    let writer = try SSTableWriter(path: path, settings: settings, createdAtMillis: createdAt)
    for entry in entries { try writer.append(entry) }
    return try writer.finish()
}

func ts(_ millis: UInt64, _ logical: UInt16 = 0) -> Timestamp { Timestamp(physicalMillis: millis, logical: logical) }
