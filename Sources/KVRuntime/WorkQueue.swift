/// A FIFO of loop work owned by one thread: appends at the tail, pops at the head, and
/// reuses its storage once drained (no per-job allocation after warm-up).
struct WorkQueue<Element> {
    private var storage: [Element?] = []
    private var head = 0

    init(capacity: Int = 256) { storage.reserveCapacity(capacity) }

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func append(contentsOf elements: [Element]) {
        for element in elements { storage.append(element) }
    }

    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head].take()
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        }
        return element
    }
}
