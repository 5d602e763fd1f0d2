import KVCore

/// What a merge leaves out of its output.
public struct MergeOptions: Sendable, Equatable {
    /// Leave out keys whose newest version is a tombstone (reads and scans).
    public var dropTombstones: Bool
    /// Leave out keys whose newest version is a value expired at this wall-clock time
    /// (ms since the epoch); nil keeps expired values.
    public var dropExpiredAtMillis: UInt64?

    /// Defaults keep everything.
    public init(dropTombstones: Bool = false, dropExpiredAtMillis: UInt64? = nil) {
        self.dropTombstones = dropTombstones
        self.dropExpiredAtMillis = dropExpiredAtMillis
    }

    /// Every newest version, tombstones and expired values included (compaction input).
    public static let everything = MergeOptions()

    /// What a reader sees at `nowMillis`: live, unexpired values only.
    public static func visible(atMillis nowMillis: UInt64) -> MergeOptions {
        MergeOptions(dropTombstones: true, dropExpiredAtMillis: nowMillis)
    }
}

/// A k-way merge of sorted sources (memtables and SSTables) that yields, per
/// `(token, key)`, only the newest version by `Record.supersedes`.
///
/// Sources are given newest first (active memtable, frozen memtables, then SSTables
/// from newest to oldest); `supersedes` decides the winner regardless, and the order
/// only breaks exact ties. Cost per output entry: O(log k) heap operations plus one
/// extra pop per shadowed version.
public struct MergeIterator: SortedEntrySource {
    private var sources: [any SortedEntrySource]
    /// The current entry of each source (nil when exhausted).
    private var heads: [Entry?]
    /// Min-heap of source indices, ordered by their head entry, then by source index.
    private var heap: [Int] = []
    private let options: MergeOptions
    /// Entries taken from the sources so far, shadowed versions included.
    public private(set) var entriesRead: UInt64 = 0

    /// Primes every source (reads its first entry).
    public init(sources: [any SortedEntrySource], options: MergeOptions = .everything) throws(KVError) {
        self.sources = sources
        self.options = options
        heads = Array(repeating: nil, count: sources.count)
        for i in sources.indices {
            heads[i] = try self.sources[i].next()
            if heads[i] != nil {
                entriesRead += 1
                push(i)
            }
        }
    }

    /// The next key's newest version that passes the options. Throws what a source
    /// throws, or `.invalidArgument` if a source is not sorted.
    public mutating func next() throws(KVError) -> Entry? {
        while let first = popMin() {
            guard var winner = heads[first] else { continue }
            try advance(first)
            while let top = heap.first, let other = heads[top],
                other.token == winner.token, other.key == winner.key
            {
                _ = popMin()
                if other.record.supersedes(winner.record) { winner.record = other.record }
                try advance(top)
            }
            if options.dropTombstones && winner.record.isTombstone { continue }
            if let now = options.dropExpiredAtMillis, winner.record.isExpired(nowMillis: now) { continue }
            return winner
        }
        return nil
    }

    private mutating func advance(_ i: Int) throws(KVError) {
        let previous = heads[i]
        heads[i] = try sources[i].next()
        if let entry = heads[i] {
            entriesRead += 1
            if let previous, !Entry.precedes((previous.token, previous.key), (entry.token, entry.key)) {
                throw .invalidArgument("merge source \(i) is not sorted at key \(entry.key)")
            }
            push(i)
        }
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        guard let x = heads[a] else { return false }
        guard let y = heads[b] else { return true }
        let c = compareTokenKey(x.token.rawValue, x.key.bytes, y.token.rawValue, y.key.bytes)
        return c != 0 ? c < 0 : a < b
    }

    private mutating func push(_ i: Int) {
        heap.append(i)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popMin() -> Int? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count, less(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count, less(heap[right], heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
