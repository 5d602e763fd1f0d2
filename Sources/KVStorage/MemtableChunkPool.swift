#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The 2 MiB chunks that memtable arenas are carved from, kept for reuse.
///
/// A fresh chunk costs a page fault that zeroes 2 MiB on the writing thread, the first
/// time each page is touched: about 4 % of a RESP SET's CPU when every memtable starts
/// on fresh memory. An arena destroyed after its flush gives its chunks back here, and
/// the next memtable takes them already mapped. The pool keeps at most `limit` chunks
/// and frees the rest, so what it holds while idle is bounded. Thread-safe; one lock
/// round per 2 MiB handed out.
final class MemtableChunkPool: Sendable {
    static let chunkBytes = 2 << 20
    /// The process-wide pool: 64 chunks (128 MiB, an active and a frozen default memtable,
    /// so a memtable that starts while the last one is being flushed still finds memory).
    static let shared = MemtableChunkPool(limit: 64)

    /// Most chunks kept.
    let limit: Int
    /// Pooled chunk addresses (as `Int`s, which are Sendable).
    private let pooled = Mutex<[Int]>([])

    private let prefaulted = Atomic<Bool>(false)

    init(limit: Int) { self.limit = limit }

    /// Fills the pool with chunks for `bytes` of memtable (at most `limit` chunks), each
    /// page touched so the kernel zeroes it now instead of under a write. Only the first
    /// call does anything. Cost: about 10 ms per 64 MiB.
    func prefault(bytes: Int) {
        guard !prefaulted.exchange(true, ordering: .relaxed) else { return }
        let wanted = min(limit, (bytes + Self.chunkBytes - 1) / Self.chunkBytes)
        var chunks: [UnsafeMutableRawPointer] = []
        for _ in 0..<wanted {
            let chunk = take()
            // unsafe: writes within the chunk just taken (chunkBytes long).
            chunk.initializeMemory(as: UInt8.self, repeating: 0, count: Self.chunkBytes)
            chunks.append(chunk)
        }
        give(chunks)
    }

    /// Chunks held now.
    var count: Int { pooled.withLock { $0.count } }

    /// A pooled chunk, or a fresh one advised as huge pages. Its bytes are not zeroed.
    func take() -> UnsafeMutableRawPointer {
        if let address = pooled.withLock({ $0.popLast() }), let chunk = UnsafeMutableRawPointer(bitPattern: address) {
            return chunk
        }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, Self.chunkBytes, Self.chunkBytes) == 0, let chunk = raw else {
            preconditionFailure("memtable arena: out of memory")
        }
        // Advice only: without transparent huge pages this is a no-op.
        _ = madvise(chunk, Self.chunkBytes, MADV_HUGEPAGE)
        return chunk
    }

    /// Takes `chunks` back (from `take`); keeps up to `limit` in all and frees the rest.
    func give(_ chunks: [UnsafeMutableRawPointer]) {
        guard !chunks.isEmpty else { return }
        let kept = pooled.withLock { pool in
            let kept = max(0, min(chunks.count, limit - pool.count))
            pool.append(contentsOf: chunks.prefix(kept).map { Int(bitPattern: $0) })
            return kept
        }
        // unsafe: each chunk came from posix_memalign in `take` and is no longer used by its arena.
        for chunk in chunks.dropFirst(kept) { free(chunk) }
    }

    deinit {
        // unsafe: the pooled chunks are owned by the pool alone.
        for address in pooled.withLock({ $0 }) { free(UnsafeMutableRawPointer(bitPattern: address)) }
    }
}
