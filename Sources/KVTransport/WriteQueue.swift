/// Bytes waiting to be sent, contiguous so that one `send` takes all of them. The first chunk
/// queued into an empty queue is adopted without a copy; later ones are appended.
struct WriteQueue {
    private var bytes: [UInt8] = []
    private var head = 0
    /// The storage of a chunk already sent (or already copied into `bytes`), handed back by
    /// `takeSpare` so a request-reply loop reuses two buffers instead of allocating one per
    /// reply. Kept only up to `spareLimit` bytes of capacity.
    private var spare: [UInt8] = []
    private static let spareLimit = 64 << 10

    var byteCount: Int { bytes.count - head }
    var isEmpty: Bool { head == bytes.count }

    mutating func append(_ chunk: [UInt8]) {
        if isEmpty {
            bytes = chunk
            head = 0
        } else {
            bytes.append(contentsOf: chunk)
            keepAsSpare(chunk)
        }
    }

    /// An empty array, with the capacity of an earlier chunk when one is free (no
    /// allocation when nothing else holds that chunk).
    mutating func takeSpare() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &spare)
        taken.removeAll(keepingCapacity: true)
        return taken
    }

    private mutating func keepAsSpare(_ chunk: [UInt8]) {
        if spare.capacity == 0, chunk.capacity <= Self.spareLimit { spare = chunk }
    }

    /// Calls `body` with the unsent bytes (not empty).
    func withUnsentBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        // Unsafe: the pointer is valid only inside `body`, over the unsent tail.
        bytes.withUnsafeBytes { raw in body(UnsafeRawBufferPointer(rebasing: raw[head...])) }
    }

    /// Marks the first `n` unsent bytes as sent.
    mutating func consume(_ n: Int) {
        head += n
        if head == bytes.count {
            var sent: [UInt8] = []
            swap(&sent, &bytes)
            head = 0
            keepAsSpare(sent)
        } else if head >= 65_536 && head * 2 >= bytes.count {
            bytes.removeSubrange(0..<head)
            head = 0
        }
    }

    mutating func removeAll() {
        bytes = []
        head = 0
        spare = []
    }
}
