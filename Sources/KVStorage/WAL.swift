import Foundation
import KVCore
import Synchronization

/// When an applied batch counts as written.
public enum CommitMode: Sendable, Equatable {
    /// Acknowledge after `fdatasync` returned for the batch (group commit shares one
    /// sync among every writer queued behind it). The default.
    case sync
    /// Acknowledge at once: the frame is copied into a memory-mapped segment, i.e. into
    /// the kernel's page cache, so a process crash (`kill -9`) loses nothing; it reaches the
    /// disk with the `fdatasync` every `milliseconds`, and a machine crash loses at most
    /// that window (Redis's `appendfsync everysec`, Cassandra's periodic commit log).
    case periodic(milliseconds: Int)
}

/// Settings of the write-ahead log.
public struct WALSettings: Sendable, Equatable {
    /// When a write is acknowledged. Default `.sync`.
    public var commitMode: CommitMode = .sync
    /// Size a segment grows to before the log moves to the next one, in bytes. Default 16 MiB.
    public var segmentBytes: Int = 16 << 20
    /// In `sync` mode, write each new segment full of zeros before use (on a helper thread,
    /// one segment ahead), so that `fdatasync` only writes data into blocks that already
    /// exist: about 2× faster here than syncing appends to a growing or `fallocate`d file.
    /// Default nil (on). `periodic` mode never zero-fills: it maps each segment with its
    /// blocks reserved (`posix_fallocate`), and one sync a period costs the same either way.
    public var preallocate: Bool? = nil

    /// Whether new segments are zero-filled: in `sync` mode, unless `preallocate` is false.
    public var preallocates: Bool { commitMode == .sync && (preallocate ?? true) }
    /// Obsolete segments kept to be renamed and reused as new ones, so syncs write into
    /// blocks that are already allocated (about 2× faster here). Default 2 files.
    public var recycledSegments: Int = 2
    /// In `sync` mode, how long the syncing thread may wait for the writers of the last
    /// group to queue again before it syncs fewer of them, in microseconds. A sync costs
    /// 100–250 µs here, so waiting a little for a fuller group raises durable throughput.
    /// 0 syncs whatever is queued at once. Default 50 µs.
    public var groupCommitWindowMicros: Int = 50
    /// Pause between the 1 MiB steps of zero-filling a spare segment in the background,
    /// in microseconds, so the log's syncs are not stuck behind it. Default 2,000 (2 ms).
    public var sparePauseMicros: Int = 2_000

    public init(commitMode: CommitMode = .sync) { self.commitMode = commitMode }
}

/// The write-ahead log: an ordered series of segment files holding every applied
/// batch until the memtable it went into is flushed to an SSTable.
///
/// In `sync` mode `append` encodes a batch into an in-memory queue (cheap, called on the
/// engine's executor); a dedicated syncing thread writes queued frames and calls
/// `fdatasync`, so the engine keeps accepting writes while the disk works.
/// `waitUntilDurable` suspends the caller (not the engine) until its frame is on
/// disk. Costs: one `pwrite` + one `fdatasync` per group, not per write.
///
/// In `periodic` mode `append` copies the frame into the mapped segment (`MappedSegment`)
/// and returns: no system call, no lock, and nothing acknowledged is lost if the process
/// dies. The syncing thread wakes once per period and `fdatasync`s what was written since.
///
/// **Threading.** `append`, `rotate`, `nextSequenceNumber` and `currentSegment` are called
/// by one appender at a time (the engine, on its executor); the syncing thread and
/// `release`, `statistics` and `sync` may run on other threads.
final class WAL: @unchecked Sendable {
    // Everything below `lock` is guarded by it; the fields after that are owned by the syncing thread.
    private let lock = NSCondition()
    private var queue = GroupCommitQueue()
    private var appendSegment: UInt64
    private var appendOffset: Int
    private var nextSequence: UInt64
    private var closing = false
    private var forceSync = false
    private var exited = false
    private var exitWaiters: [CheckedContinuation<Void, Never>] = []
    private var recyclable: [String] = []
    private var releaseBelow: UInt64 = 0
    /// The segment the syncing thread has open (0 before the first).
    private var threadSegment: UInt64 = 0
    /// Set once the spare for the next rotation was asked for (syncing thread only).
    private var spareRequested = false
    /// Bytes of zeros written into new segments.
    private var zeroFillBytes: UInt64 = 0

    // `periodic` mode writes frames into mapped segments instead of the queue (see
    // `MappedSegment`). A frame that fits the current segment takes no lock (`appendMapped`):
    // the appender alone writes `mapped`, `appendSegment`, `appendOffset`, `nextSequence` and
    // `frameScratch` in that mode, and changes `mapped` and `appendSegment` only under `lock`,
    // so that readers on other threads (the syncing thread, `release`) take the lock to read
    // them. `retired`, `directoryDirty` and the sync counters are guarded by `lock`.
    /// True in `periodic` mode.
    let mapsSegments: Bool
    /// The segment frames are copied into now.
    private var mapped: MappedSegment?
    /// Segments rotated away (unmapped) whose last frames the syncing thread has not synced yet.
    private var retired: [MappedSegment] = []
    /// A segment file was created or renamed since the last directory sync.
    private var directoryDirty = false
    private var mappedSyncs: UInt64 = 0
    private var mappedSyncedFrames: UInt64 = 0
    /// Frames and bytes appended so far; written by the appender only (a load and a store,
    /// no read-modify-write), read by the syncing thread and `statistics`.
    private let mappedFrames = Atomic<UInt64>(0)
    private let mappedBytes = Atomic<UInt64>(0)
    /// Set under `lock` when a failure is recorded or closing begins: `append` then takes
    /// the lock to report it, so the lock-free path needs only this load.
    private let appendsBlocked = Atomic<Bool>(false)
    /// Reused to encode each frame before it is copied into the mapping.
    private var frameScratch = ByteWriter(capacity: 4096)

    // The spare-segment preparer's state, guarded by `spareLock`.
    private let spareLock = NSCondition()
    private var spareWanted = false
    private var spareClosing = false
    private var preparerExited = false

    let directory: String
    let settings: WALSettings

    // Owned by the syncing thread.
    private var file: DiskFile?
    private var fileOffset: Int64 = 0
    private var unsyncedFrames = 0
    /// Frames in the last group written (sync mode's estimate of how many writers are active).
    private var lastGroupFrames = 0

    /// Starts a log whose first new frame goes to segment `recovery.nextSegment`.
    init(
        directory: String, settings: WALSettings, nextSegment: UInt64, nextSequence: UInt64, spares: [String] = []
    ) {
        self.recyclable = Array(spares.prefix(settings.recycledSegments))
        for extra in spares.dropFirst(settings.recycledSegments) { try? DiskDirectory.remove(extra) }
        self.directory = directory
        self.settings = settings
        self.appendSegment = nextSegment
        self.appendOffset = WALSegment.headerSize
        self.nextSequence = nextSequence
        self.mapsSegments = settings.commitMode != .sync
        let thread = Thread { [self] in
            nameCurrentThread("kvd-wal-sync")
            self.run()
        }
        thread.name = "kvd-wal-sync"
        thread.start()
        if settings.preallocates && !mapsSegments {
            // The first segment is ready before the first write (a few ms at open).
            if recyclable.isEmpty, let spare = try? makeSpare() { recyclable.append(spare) }
            let preparer = Thread { [self] in
                nameCurrentThread("kvd-wal-spares")
                self.prepareSpares()
            }
            preparer.name = "kvd-wal-spares"
            preparer.start()
        } else {
            preparerExited = true
        }
    }

    /// The sequence number the next appended entry gets.
    var nextSequenceNumber: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return nextSequence
    }

    /// The segment new frames currently go to.
    var currentSegment: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return appendSegment
    }

    /// Queues one batch and returns its ticket for `waitUntilDurable`. Throws the
    /// failure of an earlier write or sync, or `.closed`.
    func append(_ entries: [Entry]) throws(KVError) -> UInt64 {
        var estimate = WALSegment.frameHeaderSize + 10
        for i in entries.indices { estimate += entries[i].key.bytes.count + entries[i].record.valueByteCount + 32 }
        if mapsSegments, !appendsBlocked.load(ordering: .acquiring), let current = mapped,
            current.segment == appendSegment, current.available >= estimate
        {
            appendMapped(entries, into: current)
            return 0
        }
        lock.lock()
        defer { lock.unlock() }
        if let failure = queue.failure { throw failure }
        if closing { throw .closed }
        if appendOffset > WALSegment.headerSize && appendOffset + estimate > settings.segmentBytes {
            appendSegment += 1
            appendOffset = WALSegment.headerSize
        }
        if mapsSegments { return try appendMapped(entries, estimate: estimate) }
        let segment = appendSegment
        let sequence = nextSequence
        let before = queue.pendingBytes
        let ticket = queue.append(segment: segment, reserve: estimate) { writer in
            WALSegment.appendFrame(entries: entries, segment: segment, sequence: sequence, into: &writer)
        }
        appendOffset += queue.pendingBytes - before
        nextSequence += UInt64(entries.count)
        lock.signal()
        return ticket
    }

    /// `append` in `periodic` mode when the frame may not fit the current segment, under
    /// `lock`: opens the next segment first if need be. The ticket is 0: nothing waits for it.
    private func appendMapped(_ entries: [Entry], estimate: Int) throws(KVError) -> UInt64 {
        if let current = mapped, current.segment == appendSegment, current.available < estimate {
            appendSegment += 1
            appendOffset = WALSegment.headerSize
        }
        if mapped?.segment != appendSegment {
            try openMapped(appendSegment, minimumBytes: WALSegment.headerSize + estimate)
        }
        appendMapped(entries, into: mapped!)
        return 0
    }

    /// Encodes the frame and copies it into `segment` (the current one, with room for the
    /// estimate), by the appender, with or without `lock`.
    private func appendMapped(_ entries: [Entry], into segment: MappedSegment) {
        frameScratch.removeAll()
        WALSegment.appendFrame(entries: entries, segment: appendSegment, sequence: nextSequence, into: &frameScratch)
        segment.append(frameScratch.bytes)
        appendOffset += frameScratch.count
        nextSequence += UInt64(entries.count)
        // The appender is the only writer of both counters: a plain store publishes them.
        mappedBytes.store(mappedBytes.load(ordering: .relaxed) &+ UInt64(frameScratch.count), ordering: .relaxed)
        mappedFrames.store(mappedFrames.load(ordering: .relaxed) &+ 1, ordering: .releasing)
    }

    /// Maps segment `segment` (a recycled file when one is spare), under `lock`. On the
    /// appending thread: once per segment, a rename or create, a block reservation and an
    /// `mmap` (well under a millisecond); the directory is synced with the next period.
    private func openMapped(_ segment: UInt64, minimumBytes: Int) throws(KVError) {
        let path = directory + "/" + WALSegment.fileName(segment)
        let spare = recyclable.popLast()
        if let spare { try DiskDirectory.rename(spare, path) }
        let next = try MappedSegment(
            path: path, segment: segment, size: max(settings.segmentBytes, minimumBytes), create: spare == nil)
        if let current = mapped {
            current.retire()
            retired.append(current)
        }
        mapped = next
        directoryDirty = true
    }

    /// True in `periodic` mode: a write is acknowledged once `append` queued it.
    var acknowledgesOnAppend: Bool {
        if case .periodic = settings.commitMode { true } else { false }
    }

    /// Returns when the frame with `ticket` is durable per the commit mode: at once in
    /// `periodic` mode, after its group's `fdatasync` in `sync` mode.
    func waitUntilDurable(_ ticket: UInt64) async throws {
        if case .periodic = settings.commitMode {
            if let failure = currentFailure() { throw failure }
            return
        }
        try await waitForSync(ticket)
    }

    /// Returns when every frame appended so far is on disk, whatever the commit mode.
    func sync() async throws {
        if mapsSegments {
            for segment in mappedSegmentsNow() { try segment.file.syncData() }
            try DiskDirectory.sync(directory)
            return
        }
        try await waitForSync(requestSync())
    }

    /// The mapped segments that may hold unsynced frames.
    private func mappedSegmentsNow() -> [MappedSegment] {
        lock.lock()
        defer { lock.unlock() }
        return retired + (mapped.map { [$0] } ?? [])
    }

    private func currentFailure() -> KVError? {
        lock.lock()
        defer { lock.unlock() }
        return queue.failure
    }

    private func requestSync() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        forceSync = true
        lock.signal()
        return queue.appended
    }

    private func waitForSync(_ ticket: UInt64) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            lock.lock()
            if let failure = queue.failure {
                lock.unlock()
                c.resume(throwing: failure)
                return
            }
            let waiting = queue.wait(for: ticket, c)
            lock.unlock()
            if !waiting { c.resume() }
        }
    }

    /// Moves new frames to a fresh segment and returns its number: every frame
    /// appended before lies in a lower segment (used when a memtable is frozen).
    func rotate() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        if appendOffset > WALSegment.headerSize {
            appendSegment += 1
            appendOffset = WALSegment.headerSize
        }
        return appendSegment
    }

    /// Declares segments below `segment` obsolete (their data is in durable SSTables):
    /// they are recycled or deleted once the syncing thread is done with them.
    func release(below segment: UInt64) {
        lock.lock()
        releaseBelow = max(releaseBelow, segment)
        let limit = min(releaseBelow, threadSegment == 0 ? appendSegment : threadSegment)
        lock.unlock()
        removeSegments(below: limit)
    }

    /// Write statistics: (fdatasync calls, frames they made durable, bytes written).
    var statistics: (syncs: UInt64, syncedFrames: UInt64, bytesWritten: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        return (
            queue.syncCount + mappedSyncs, queue.syncedFrames + mappedSyncedFrames,
            queue.bytesWritten + zeroFillBytes + mappedBytes.load(ordering: .relaxed)
        )
    }

    /// Writes and syncs everything queued, then stops the syncing and preparing threads.
    func close() async {
        await stopSyncing()
        stopPreparing()
    }

    private func stopPreparing() {
        spareLock.lock()
        spareClosing = true
        spareLock.broadcast()
        while !preparerExited { spareLock.wait() }
        spareLock.unlock()
    }

    private func stopSyncing() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            lock.lock()
            closing = true
            appendsBlocked.store(true, ordering: .releasing)
            if exited {
                lock.unlock()
                c.resume()
                return
            }
            exitWaiters.append(c)
            lock.signal()
            lock.unlock()
        }
    }

    // MARK: - Segment files (called on the syncing thread, or with the files it no longer touches)

    private func removeSegments(below limit: UInt64) {
        guard let names = try? DiskDirectory.list(directory) else { return }
        for name in names {
            guard let n = WALSegment.segmentNumber(fileName: name), n < limit else { continue }
            let path = directory + "/" + name
            lock.lock()
            let keep = recyclable.count < settings.recycledSegments && !recyclable.contains(path)
            if keep {
                let spare = directory + "/recycle-" + String(n) + ".log"
                if (try? DiskDirectory.rename(path, spare)) != nil { recyclable.append(spare) }
            }
            lock.unlock()
            if !keep { try? DiskDirectory.remove(path) }
        }
        try? DiskDirectory.sync(directory)
    }

    private func openSegment(_ segment: UInt64) throws(KVError) {
        let path = directory + "/" + WALSegment.fileName(segment)
        lock.lock()
        let spare = recyclable.popLast()
        lock.unlock()
        let newFile: DiskFile
        var source = spare
        if source == nil && settings.preallocates { source = try makeSpare() }
        if let spare = source {
            try DiskDirectory.rename(spare, path)
            newFile = try DiskFile(path: path, flags: O_RDWR)
        } else {
            newFile = try DiskFile(path: path, flags: O_RDWR | O_CREAT | O_TRUNC)
        }
        spareRequested = false
        try newFile.write(WALSegment.header(segment: segment), at: 0)
        try newFile.sync()
        try DiskDirectory.sync(directory)
        file = newFile
        fileOffset = Int64(WALSegment.headerSize)
        lock.lock()
        threadSegment = segment
        let limit = min(releaseBelow, segment)
        lock.unlock()
        if limit > 0 { removeSegments(below: limit) }
    }

    /// Creates a segment-sized file of zeros, durable, and returns its path. `paced`
    /// (the preparer thread) flushes each MiB and pauses between them, so the log's own
    /// syncs never queue behind one large flush.
    private func makeSpare(paced: Bool = false) throws(KVError) -> String {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let path = directory + "/recycle-z\(now.tv_sec)\(now.tv_nsec).log"
        let file = try DiskFile(path: path, flags: O_RDWR | O_CREAT | O_TRUNC)
        let chunk = min(1 << 20, settings.segmentBytes)
        let zeros = [UInt8](repeating: 0, count: chunk)
        var offset = 0
        while offset < settings.segmentBytes {
            try file.write(zeros, at: Int64(offset))
            offset += chunk
            if paced {
                try file.syncData()
                usleep(UInt32(settings.sparePauseMicros))
            }
        }
        try file.syncData()
        try DiskDirectory.sync(directory)
        lock.lock()
        zeroFillBytes += UInt64(offset)
        lock.unlock()
        return path
    }

    /// The preparer thread: keeps a zero-filled spare segment ready, so rotating the log
    /// never waits for a fresh file to be written.
    private func prepareSpares() {
        while true {
            spareLock.lock()
            while !spareClosing && !spareWanted { spareLock.wait() }
            if spareClosing {
                preparerExited = true
                spareLock.broadcast()
                spareLock.unlock()
                return
            }
            spareWanted = false
            spareLock.unlock()
            lock.lock()
            let needed = recyclable.isEmpty
            lock.unlock()
            guard needed, let path = try? makeSpare(paced: true) else { continue }
            lock.lock()
            let keep = recyclable.count < max(1, settings.recycledSegments)
            if keep { recyclable.append(path) }
            lock.unlock()
            if !keep { try? DiskDirectory.remove(path) }
        }
    }

    // MARK: - The syncing thread

    /// The syncing thread in `sync` mode: writes every queued frame with one `pwrite` per
    /// segment, syncs once, and acknowledges the whole group.
    private func run() {
        if case let .periodic(ms) = settings.commitMode {
            runMapped(periodMillis: max(ms, 1))
            return
        }
        while true {
            lock.lock()
            while queue.isIdle && !closing && !forceSync { lock.wait() }
            if settings.groupCommitWindowMicros > 0 && queue.pendingFrames < lastGroupFrames {
                // The writers acknowledged by the last sync are probably queueing again:
                // give them a moment to join this group (each append signals).
                let deadline = Date(timeIntervalSinceNow: Double(settings.groupCommitWindowMicros) / 1e6)
                while !closing && !forceSync && queue.pendingFrames < lastGroupFrames {
                    if !lock.wait(until: deadline) { break }
                }
            }
            lastGroupFrames = queue.pendingFrames
            let (chunks, upTo) = queue.takeChunks()
            let mustSync = forceSync || closing
            forceSync = false
            let stop = closing
            lock.unlock()

            var frames = 0
            var bytes = 0
            var waiters: [GroupCommitQueue.Waiter] = []
            do {
                for chunk in chunks {
                    if chunk.segment != threadSegment || file == nil {
                        if file != nil { try file!.syncData() }
                        try openSegment(chunk.segment)
                    }
                    try file!.write(chunk.writer.bytes, at: fileOffset)
                    fileOffset += Int64(chunk.writer.count)
                    if settings.preallocates && !spareRequested && fileOffset > Int64(settings.segmentBytes / 2) {
                        // Half full: have the preparer zero-fill the next segment in time for the rotation.
                        spareRequested = true
                        spareLock.lock()
                        spareWanted = true
                        spareLock.signal()
                        spareLock.unlock()
                    }
                    frames += chunk.frames
                    bytes += chunk.writer.count
                }
                unsyncedFrames += frames
                if unsyncedFrames > 0 || mustSync, file != nil {
                    try file!.syncData()
                }
                lock.lock()
                waiters = queue.complete(upTo: upTo, frames: unsyncedFrames, bytes: bytes, synced: true)
                unsyncedFrames = 0
                lock.unlock()
                for w in waiters { w.continuation.resume() }
            } catch {
                lock.lock()
                waiters = queue.fail(error)
                lock.unlock()
                for w in waiters { w.continuation.resume(throwing: error) }
            }
            if stop {
                lock.lock()
                if !queue.isIdle {
                    lock.unlock()
                    continue
                }
                exited = true
                let toResume = exitWaiters
                exitWaiters = []
                waiters = queue.fail(.closed)
                lock.unlock()
                file = nil
                for w in waiters { w.continuation.resume(throwing: KVError.closed) }
                for c in toResume { c.resume() }
                return
            }
        }
    }

    /// The syncing thread in `periodic` mode: frames are already in the page cache, so it
    /// only makes them durable. It wakes once per period (the appender never signals it:
    /// that would need the lock on every append) and, when frames were appended or segment
    /// files changed since the last look, calls `fdatasync` once per segment written (and
    /// syncs the directory when files changed). A frame is thus durable within one period.
    private func runMapped(periodMillis: Int) {
        var looked = ContinuousClock.now
        var synced: UInt64 = 0
        while true {
            lock.lock()
            let due = looked + .milliseconds(periodMillis)
            while !closing && !forceSync {
                let now = ContinuousClock.now
                if due <= now { break }
                let left = due - now
                let seconds = Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18
                _ = lock.wait(until: Date(timeIntervalSinceNow: seconds))
            }
            looked = .now
            // Frames counted here were copied into the mapping before the count was stored.
            let appended = mappedFrames.load(ordering: .acquiring)
            let segments = retired + (mapped.map { [$0] } ?? [])
            let anyRetired = !retired.isEmpty
            retired.removeAll()
            let directoryChanged = directoryDirty
            directoryDirty = false
            forceSync = false
            let stop = closing
            lock.unlock()

            if appended != synced || anyRetired || directoryChanged {
                do {
                    for segment in segments { try segment.file.syncData() }
                    if directoryChanged { try DiskDirectory.sync(directory) }
                    lock.lock()
                    mappedSyncs += 1
                    mappedSyncedFrames += appended &- synced
                    lock.unlock()
                    synced = appended
                } catch {
                    lock.lock()
                    _ = queue.fail(error)
                    appendsBlocked.store(true, ordering: .releasing)
                    lock.unlock()
                }
            }
            if stop {
                // `mapped` stays mapped: the appender reads it without the lock. Appends
                // fail from now on (`appendsBlocked`); the mapping goes with the log.
                lock.lock()
                exited = true
                let toResume = exitWaiters
                exitWaiters = []
                lock.unlock()
                for c in toResume { c.resume() }
                return
            }
        }
    }
}
