import KVCore

// Added by the server work (KVServer seeds its node clock with it); kept apart
// from the engine's own files.
extension StorageEngine {
    /// The newest timestamp of any version the engine holds (memtables and live
    /// SSTables), or nil when it holds nothing. A node seeds its hybrid logical
    /// clock with it on start, so a wall clock that went backwards across a
    /// restart cannot stamp new writes older than stored data (they would lose
    /// last-write-wins). Cost: one pass over the memtables and table list.
    public func newestTimestamp() -> Timestamp? {
        var newest = active.maxTimestamp
        for f in frozen {
            if let t = f.memtable.maxTimestamp { newest = max(newest ?? t, t) }
        }
        for table in tables {
            let t = table.reader.metadata.maxTimestamp
            newest = max(newest ?? t, t)
        }
        return newest
    }
}
