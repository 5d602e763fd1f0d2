import KVCore

/// A position in `(token, key)` order: a scan page ends at one, the next page starts
/// just after it.
public struct ScanCursor: Sendable, Hashable {
    public var token: Token
    public var key: Key

    public init(token: Token, key: Key) {
        self.token = token
        self.key = key
    }
}

/// One page of a token-range scan.
public struct ScanPage: Sendable {
    /// Entries in `(token, key)` order, the newest version of each key.
    public var entries: [Entry]
    /// Where to resume (pass as `after:`); nil when the range is exhausted.
    public var resume: ScanCursor?
}

extension StorageEngine {
    /// The newest version of every key whose token lies in `tokens`, in `(token, key)`
    /// order, at most `limit` entries starting after `cursor`. With `visibleOnly` false
    /// (the default, for Merkle trees and streaming) tombstones and expired values are
    /// included; with true only what a client would read.
    ///
    /// Each page is a consistent view of the moment it was taken; writes between pages
    /// may or may not appear in later ones. Cost: one seek per memtable and per table
    /// overlapping the range, then O(log sources) per entry; blocks come from the cache
    /// or `pread` on this executor. Throws `KVError.corruption` (and quarantines the
    /// table) when a block fails its checksum.
    public func scan(
        tokens: ClosedRange<Token>, after cursor: ScanCursor? = nil, limit: Int = 1024, visibleOnly: Bool = false
    ) throws(KVError) -> ScanPage {
        if isClosed { throw .closed }
        let startToken = cursor?.token ?? tokens.lowerBound
        guard startToken <= tokens.upperBound, limit > 0 else { return ScanPage(entries: [], resume: nil) }
        let startKey = cursor?.key ?? Key([])
        var sources: [any SortedEntrySource] = []
        for memtable in [active] + frozen.reversed().map(\.memtable) {
            var iterator = memtable.makeIterator(tokens: startToken...tokens.upperBound)
            iterator.seek(token: startToken, key: startKey)
            sources.append(iterator)
        }
        var tableOf: [String: LiveTable] = [:]
        do {
            for table in tables {
                let m = table.reader.metadata
                guard m.entryCount > 0, m.maxToken >= startToken, m.minToken <= tokens.upperBound else { continue }
                tableOf[table.reader.path] = table
                var iterator = try table.reader.makeIterator(tokens: startToken...tokens.upperBound)
                try iterator.seek(token: startToken, key: startKey)
                sources.append(iterator)
            }
            var merged = try MergeIterator(
                sources: sources, options: visibleOnly ? .visible(atMillis: clock.nowMillis()) : .everything)
            var entries: [Entry] = []
            entries.reserveCapacity(min(limit, 4096))
            while entries.count < limit, let entry = try merged.next() {
                if let cursor, entry.token == cursor.token && entry.key == cursor.key { continue }
                entries.append(entry)
            }
            let resume = entries.count == limit ? entries.last.map { ScanCursor(token: $0.token, key: $0.key) } : nil
            return ScanPage(entries: entries, resume: resume)
        } catch let error {
            if case let .corruption(path, _, _) = error, let table = tableOf[path] { quarantine(table, error: error) }
            throw error
        }
    }

    /// Every entry of `tokens` as an asynchronous sequence that fetches `pageSize`
    /// entries per call to the engine (see `scan(tokens:after:limit:visibleOnly:)`).
    public nonisolated func entries(
        tokens: ClosedRange<Token>, pageSize: Int = 1024, visibleOnly: Bool = false
    ) -> StorageScan {
        StorageScan(engine: self, tokens: tokens, pageSize: max(1, pageSize), visibleOnly: visibleOnly)
    }
}

/// A token-range scan as an `AsyncSequence` of entries, fetched page by page.
public struct StorageScan: AsyncSequence, Sendable {
    public typealias Element = Entry
    let engine: StorageEngine
    let tokens: ClosedRange<Token>
    let pageSize: Int
    let visibleOnly: Bool

    public func makeAsyncIterator() -> Iterator {
        Iterator(scan: self)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let scan: StorageScan
        var buffer: [Entry] = []
        var index = 0
        var cursor: ScanCursor?
        var finished = false

        public mutating func next() async throws -> Entry? {
            if index < buffer.count {
                defer { index += 1 }
                return buffer[index]
            }
            guard !finished else { return nil }
            let page = try await scan.engine.scan(
                tokens: scan.tokens, after: cursor, limit: scan.pageSize, visibleOnly: scan.visibleOnly)
            buffer = page.entries
            index = 0
            cursor = page.resume
            finished = page.resume == nil
            guard !buffer.isEmpty else { return nil }
            index = 1
            return buffer[0]
        }
    }
}
