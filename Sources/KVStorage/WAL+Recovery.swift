import Foundation
import KVCore

/// Reading a log back after a restart or a crash.
extension WAL {
    /// What recovery found: the batches to replay, in order.
    struct Recovery: Sendable {
        var batches: [WALSegment.Batch]
        /// The next sequence number to hand out.
        var nextSequence: UInt64
        /// The segment new writes go to.
        var nextSegment: UInt64
        /// Torn tails truncated, as (segment, bytes dropped).
        var truncated: [(segment: UInt64, bytes: Int)]
        /// Spare segment files left by an earlier run, to be reused.
        var spares: [String] = []
    }

    /// Reads every segment ≥ `startSegment` in `directory`, truncating a damaged tail of
    /// the last one. Throws `KVError.corruption` on damage anywhere else. Segments below
    /// `startSegment` (already flushed) are deleted.
    static func recover(directory: String, startSegment: UInt64, firstSequence: UInt64) throws(KVError) -> Recovery {
        var segments: [UInt64] = []
        var spares: [String] = []
        for name in try DiskDirectory.list(directory) {
            if name.hasPrefix("recycle-") && name.hasSuffix(".log") {
                spares.append(directory + "/" + name)
                continue
            }
            guard let n = WALSegment.segmentNumber(fileName: name) else { continue }
            if n < startSegment {
                try DiskDirectory.remove(directory + "/" + name)
            } else {
                segments.append(n)
            }
        }
        segments.sort()
        var recovery = Recovery(
            batches: [], nextSequence: firstSequence, nextSegment: max(startSegment, 1), truncated: [], spares: spares)
        var expectedSequence: UInt64? = nil
        for (i, segment) in segments.enumerated() {
            let path = directory + "/" + WALSegment.fileName(segment)
            if i > 0 && segments[i - 1] + 1 != segment {
                throw .corruption(path: path, offset: 0, reason: "WAL segment \(segments[i - 1] + 1) is missing")
            }
            let file = try DiskFile(path: path, flags: O_RDWR)
            let bytes = try file.readAll()
            let contents = try WALSegment.read(bytes, segment: segment, path: path)
            let isLast = i == segments.count - 1
            if contents.damagedTail {
                guard isLast else {
                    throw .corruption(
                        path: path, offset: Int64(contents.validEnd), reason: "damaged frame in a completed WAL segment")
                }
                try file.truncate(to: Int64(contents.validEnd))
                try file.sync()
                recovery.truncated.append((segment, bytes.count - contents.validEnd))
            }
            for batch in contents.batches {
                if let expected = expectedSequence, batch.sequence != expected {
                    throw .corruption(
                        path: path, offset: 0,
                        reason: "WAL sequence jumps from \(expected) to \(batch.sequence): records are missing")
                }
                expectedSequence = batch.sequence + UInt64(batch.entries.count)
                recovery.batches.append(batch)
            }
            recovery.nextSegment = segment + 1
        }
        if let expectedSequence { recovery.nextSequence = max(recovery.nextSequence, expectedSequence) }
        return recovery
    }
}
