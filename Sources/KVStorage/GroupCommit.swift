import KVCore

/// The bookkeeping of group commit, as a value type the WAL keeps under its lock.
///
/// Writers append encoded frames to `chunks` and get a ticket (the frame's
/// position in the log). The syncing thread takes every chunk queued so far,
/// writes them with one `pwrite` per segment, calls `fdatasync` once, and then
/// completes every ticket up to the last one it took: one disk flush acknowledges
/// the whole group. Writers that arrive while a flush is in progress queue for
/// the next one.
struct GroupCommitQueue {
    /// Frames for one segment, encoded back to back.
    struct Chunk {
        var segment: UInt64
        var writer: ByteWriter
        var frames: Int
    }

    /// A writer waiting for its ticket to be on disk.
    struct Waiter {
        var ticket: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private(set) var chunks: [Chunk] = []
    /// Tickets handed out so far (ticket n = the n-th frame appended).
    private(set) var appended: UInt64 = 0
    /// Every ticket ≤ this has been written to the OS.
    private(set) var written: UInt64 = 0
    /// Every ticket ≤ this is on disk (fdatasync returned).
    private(set) var synced: UInt64 = 0
    private(set) var waiters: [Waiter] = []
    private(set) var pendingBytes = 0
    /// Frames queued and not yet taken.
    private(set) var pendingFrames = 0
    /// Set when a write or sync failed; every later append and wait fails with it.
    private(set) var failure: KVError?

    // Statistics.
    private(set) var syncCount: UInt64 = 0
    private(set) var syncedFrames: UInt64 = 0
    private(set) var bytesWritten: UInt64 = 0

    var isIdle: Bool { chunks.isEmpty }

    /// Appends one frame, encoded by `encode` into the chunk for `segment`. Returns its ticket.
    mutating func append(segment: UInt64, reserve: Int, _ encode: (inout ByteWriter) -> Void) -> UInt64 {
        if chunks.last?.segment != segment {
            chunks.append(Chunk(segment: segment, writer: ByteWriter(capacity: max(reserve, 64 << 10)), frames: 0))
        }
        let before = chunks[chunks.count - 1].writer.count
        encode(&chunks[chunks.count - 1].writer)
        chunks[chunks.count - 1].frames += 1
        pendingBytes += chunks[chunks.count - 1].writer.count - before
        pendingFrames += 1
        appended += 1
        return appended
    }

    /// Takes every queued chunk for writing; returns them and the last ticket they hold.
    mutating func takeChunks() -> (chunks: [Chunk], upTo: UInt64) {
        let taken = chunks
        chunks = []
        pendingBytes = 0
        pendingFrames = 0
        return (taken, appended)
    }

    /// Records that tickets ≤ `upTo` reached the OS (and the disk when `synced`),
    /// and returns the waiters that may now resume.
    mutating func complete(upTo: UInt64, frames: Int, bytes: Int, synced didSync: Bool) -> [Waiter] {
        written = max(written, upTo)
        bytesWritten += UInt64(bytes)
        if didSync {
            syncCount += 1
            syncedFrames += UInt64(frames)
            synced = max(synced, upTo)
        }
        return takeWaiters(upTo: synced)
    }

    /// Counts frames written earlier (without a sync) that a later sync made durable.
    mutating func addSyncedFrames(_ n: Int) { syncedFrames += UInt64(n) }

    /// Registers a writer waiting for `ticket`, or returns false when it is already durable.
    mutating func wait(for ticket: UInt64, _ continuation: CheckedContinuation<Void, any Error>) -> Bool {
        if ticket <= synced && failure == nil { return false }
        waiters.append(Waiter(ticket: ticket, continuation: continuation))
        return true
    }

    /// Records a failure and returns every waiter, to be resumed with it.
    mutating func fail(_ error: KVError) -> [Waiter] {
        if failure == nil { failure = error }
        let all = waiters
        waiters = []
        return all
    }

    private mutating func takeWaiters(upTo ticket: UInt64) -> [Waiter] {
        guard waiters.contains(where: { $0.ticket <= ticket }) else { return [] }
        var ready: [Waiter] = []
        var rest: [Waiter] = []
        for w in waiters {
            if w.ticket <= ticket { ready.append(w) } else { rest.append(w) }
        }
        waiters = rest
        return ready
    }
}
