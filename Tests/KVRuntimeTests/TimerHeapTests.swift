import Testing
@testable import KVRuntime

@Suite struct TimerHeapTests {
    @Test func popsInDeadlineOrderOnlyWhenExpired() {
        var heap = TimerHeap()
        for (deadline, id) in [(50, 1), (10, 2), (30, 3), (10, 4), (70, 5)] as [(UInt64, UInt64)] {
            heap.push(deadline: deadline, id: id)
        }
        #expect(heap.nextDeadline == 10)
        #expect(heap.popExpired(now: 5) == nil)
        var fired: [UInt64] = []
        while let entry = heap.popExpired(now: 50) { fired.append(entry.id) }
        #expect(fired == [2, 4, 3, 1])
        #expect(heap.count == 1)
        #expect(heap.popFirst()?.id == 5)
        #expect(heap.isEmpty)
    }
}
