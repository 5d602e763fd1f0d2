#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bump allocator for a memtable: 2 MiB chunks aligned to 2 MiB and advised as huge
/// pages (where the kernel's transparent huge pages are in `madvise` mode), so a
/// skiplist walk over hundreds of thousands of nodes misses the TLB far less. Requests
/// larger than a quarter chunk get a malloc'd block of their own. Everything is released
/// when the arena is destroyed; nothing is released before.
///
/// Chunks come from, and go back to, a `MemtableChunkPool` (process-wide by default).
struct MemtableArena: ~Copyable {
    static var chunkBytes: Int { MemtableChunkPool.chunkBytes }

    private let pool: MemtableChunkPool
    /// Dedicated (malloc'd) blocks, freed in deinit.
    private var blocks: [UnsafeMutableRawPointer] = []
    /// 2 MiB chunks, handed back to the pool in deinit.
    private var chunks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    /// Bytes handed out (rounded to 8).
    private(set) var allocatedBytes = 0

    init(pool: MemtableChunkPool = .shared) { self.pool = pool }

    deinit {
        // unsafe: every block came from malloc below and is freed once here.
        for block in blocks { free(block) }
        pool.give(chunks)
    }

    /// `size` bytes aligned to `alignment` (a power of two, at most 4096), valid until
    /// the arena is destroyed.
    mutating func allocate(_ size: Int, alignment: Int = 8) -> UnsafeMutableRawPointer {
        let rounded = (size + 7) & ~7
        allocatedBytes += rounded
        if let current = cursor {
            // Skip to the next multiple of `alignment` inside the current chunk.
            let padding = (alignment - Int(bitPattern: current) & (alignment - 1)) & (alignment - 1)
            if padding + rounded <= remaining {
                cursor = current + padding
                remaining -= padding
            } else {
                remaining = 0
            }
        }
        if rounded > remaining {
            if rounded > Self.chunkBytes / 4 {
                // unsafe: a dedicated block, recorded for `free` in deinit.
                guard let block = malloc(rounded) else { preconditionFailure("memtable arena: out of memory") }
                blocks.append(block)
                return block
            }
            let chunk = pool.take()
            chunks.append(chunk)
            cursor = chunk
            remaining = Self.chunkBytes
        }
        // unsafe: the cursor stays within the current chunk (rounded ≤ remaining).
        let block = cursor!
        cursor = block + rounded
        remaining -= rounded
        return block
    }
}
