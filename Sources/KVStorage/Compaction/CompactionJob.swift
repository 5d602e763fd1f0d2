#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KVCore

/// A table written by a compaction.
public struct CompactionOutput: Sendable, Equatable {
    /// Final path of the table (renamed into place, directory not yet fsynced).
    public var path: String
    /// File size in bytes.
    public var sizeBytes: UInt64
    /// The table's metadata, as `SSTableReader.open` will read it back.
    public var metadata: SSTableMetadata
}

/// What a compaction did.
public struct CompactionResult: Sendable, Equatable {
    /// New tables, in token order (disjoint spans). Empty when everything was purged.
    public var outputs: [CompactionOutput]
    /// Entries read from the inputs, all versions counted.
    public var entriesRead: UInt64
    /// Entries written.
    public var entriesWritten: UInt64
    /// Tombstones dropped by the purge rule.
    public var tombstonesPurged: UInt64
    /// Expired values dropped by the purge rule.
    public var expiredPurged: UInt64
}

/// Merges input SSTables into new ones: the newest version of each key survives
/// (older versions are discarded), purgeable tombstones and expired values are
/// dropped (see `PurgeRule`), and outputs are cut at `targetFileSizeBytes`, only
/// between distinct tokens so that level ≥ 1 tables never share a token.
///
/// Synchronous, blocking and I/O-bound (sequential reads that bypass the block cache,
/// fsynced writes): call it from a Compactor actor, not from the shard's executor. On failure, outputs already written are
/// deleted and the error is rethrown; the inputs are untouched either way. The caller
/// installs the outputs (manifest), fsyncs the directory and deletes the inputs.
public struct CompactionJob {
    /// Tables to merge, in any order (`Record.supersedes` picks the winner).
    public var inputs: [SSTableReader]
    /// Block size, bloom bits and target file size of the outputs.
    public var settings: TableSettings
    /// What may be dropped.
    public var purge: PurgeRule

    /// A job over `inputs`; nothing runs until `run`.
    public init(inputs: [SSTableReader], settings: TableSettings, purge: PurgeRule) {
        self.inputs = inputs
        self.settings = settings
        self.purge = purge
    }

    /// Runs the merge. `nextOutputPath` names each new table (e.g. from file numbers
    /// reserved up front); `createdAtMillis` is stamped into the outputs' metadata. The
    /// outputs are fsynced and renamed into place but the directory is not fsynced: the
    /// caller does that once before installing them.
    public func run(
        createdAtMillis: UInt64, nextOutputPath: () throws(KVError) -> String
    ) throws(KVError) -> CompactionResult {
        var result = CompactionResult(
            outputs: [], entriesRead: 0, entriesWritten: 0, tombstonesPurged: 0, expiredPurged: 0)
        var writer: SSTableWriter?
        do throws(KVError) {
            var sources: [any SortedEntrySource] = []
            for input in inputs {
                sources.append(try input.makeIterator(fillCache: false))
            }
            var merge = try MergeIterator(sources: sources, options: .everything)
            var lastToken: Token?
            while let entry = try merge.next() {
                if entry.record.isTombstone || entry.record.isExpired(nowMillis: purge.nowMillis),
                    purge.isPurgeable(entry)
                {
                    if entry.record.isTombstone { result.tombstonesPurged += 1 } else { result.expiredPurged += 1 }
                    continue
                }
                if let current = writer, current.bytesWritten >= UInt64(settings.targetFileSizeBytes),
                    lastToken != entry.token
                {
                    result.outputs.append(try finish(current))
                    writer = nil
                }
                if writer == nil {
                    let path = try nextOutputPath()
                    writer = try SSTableWriter(path: path, settings: settings, createdAtMillis: createdAtMillis)
                }
                try writer!.append(entry)
                lastToken = entry.token
                result.entriesWritten += 1
            }
            if let current = writer {
                writer = nil
                result.outputs.append(try finish(current))
            }
            result.entriesRead = merge.entriesRead
            return result
        } catch {
            writer?.abandon()
            for output in result.outputs { unlink(output.path) }
            throw error
        }
    }

    private func finish(_ writer: SSTableWriter) throws(KVError) -> CompactionOutput {
        let metadata = try writer.finish()
        return CompactionOutput(path: writer.path, sizeBytes: writer.bytesWritten, metadata: metadata)
    }
}
