import KVCore

/// A stream of entries in strictly ascending `(token, key)` order, at most one
/// version per key: a memtable iterator, an SSTable iterator, or a merge of them.
///
/// `MergeIterator` combines several of these; `SSTableWriter` consumes one.
public protocol SortedEntrySource {
    /// The next entry, or nil when the source is exhausted (or past its token bound).
    /// Throws `KVError.corruption` / `.io` when stored bytes cannot be read.
    mutating func next() throws(KVError) -> Entry?
}

/// An in-memory sorted source over an array, for tests and for small batches
/// (e.g. a streamed range being written out). The array must already be sorted by
/// `Entry.precedes` with one version per key.
public struct ArrayEntrySource: SortedEntrySource {
    private let entries: [Entry]
    private var position = 0

    /// Wraps entries already sorted by `Entry.precedes`, one per key.
    public init(_ sortedEntries: [Entry]) { self.entries = sortedEntries }

    /// The next array element.
    public mutating func next() throws(KVError) -> Entry? {
        guard position < entries.count else { return nil }
        defer { position += 1 }
        return entries[position]
    }
}
