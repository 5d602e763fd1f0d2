import KVCore
import Testing
@testable import KVTransport

@Suite struct RPCFrameTests {
    let limit = 1 << 20

    @Test func layoutMatchesFormatDocument() {
        let bytes = RPCFrame(kind: .request, method: 7, requestID: 1, payload: [1, 2, 3]).encoded()
        #expect(bytes.count == 22)
        #expect(Array(bytes[0..<18]) == [0x12, 0, 0, 0, 1, 7, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3])
        let crc = UInt32(bytes[18]) | UInt32(bytes[19]) << 8 | UInt32(bytes[20]) << 16 | UInt32(bytes[21]) << 24
        #expect(crc == CRC32C.checksum(Array(bytes[0..<18])))
    }

    @Test func roundTripsEveryKindAndSize() throws {
        var random = SplitMix64(seed: 1)
        for kind in [RPCFrame.Kind.request, .response, .failure, .oneWay] {
            for size in [0, 1, 17, 4096, 100_000] {
                let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) }
                let frame = RPCFrame(kind: kind, method: UInt16.random(in: 0...UInt16.max, using: &random),
                                     requestID: random.next(), payload: payload)
                #expect(try RPCFrame.decode(frame.encoded(), maxFrameBytes: limit) == frame)
            }
        }
    }

    @Test func everyFlippedBitIsRejected() {
        let bytes = RPCFrame(kind: .response, method: 3, requestID: 99, payload: Array(0..<40)).encoded()
        for index in bytes.indices {
            for bit in 0..<8 {
                var corrupt = bytes
                corrupt[index] ^= UInt8(1 << bit)
                #expect(throws: RPCFrameError.self) { try RPCFrame.decode(corrupt, maxFrameBytes: limit) }
            }
        }
    }

    @Test func truncatedFramesWaitOrFail() throws {
        let bytes = RPCFrame(kind: .request, method: 1, requestID: 5, payload: Array(repeating: 9, count: 30)).encoded()
        for cut in 0..<bytes.count {
            let prefix = Array(bytes[..<cut])
            let partial = try prefix.withUnsafeBytes { try RPCFrame.decode($0, maxFrameBytes: limit) }
            #expect(partial == nil)
            #expect(throws: RPCFrameError.self) { try RPCFrame.decode(prefix, maxFrameBytes: limit) }
        }
    }

    @Test func typedErrorsForBadLengthKindAndChecksum() {
        var writer = ByteWriter()
        writer.write(littleEndian: UInt32(3))
        writer.write(bytes: [UInt8](repeating: 0, count: 20))
        #expect(throws: RPCFrameError.lengthTooSmall(3)) { try RPCFrame.decode(writer.bytes, maxFrameBytes: limit) }

        let big = RPCFrame(kind: .request, method: 1, requestID: 1, payload: [UInt8](repeating: 0, count: 100)).encoded()
        #expect(throws: RPCFrameError.frameTooLarge(length: 115, limit: 64)) { try RPCFrame.decode(big, maxFrameBytes: 64) }

        // A valid checksum over an unknown kind.
        var unknown = RPCFrame(kind: .request, method: 1, requestID: 1, payload: []).encoded()
        unknown[4] = 9
        let crc = CRC32C.checksum(Array(unknown[0..<15]))
        unknown.replaceSubrange(15..<19, with: withUnsafeBytes(of: crc.littleEndian, Array.init))
        #expect(throws: RPCFrameError.unknownKind(9)) { try RPCFrame.decode(unknown, maxFrameBytes: limit) }

        var corrupt = RPCFrame(kind: .request, method: 1, requestID: 1, payload: [5]).encoded()
        corrupt[15] ^= 0xFF
        #expect {
            try RPCFrame.decode(corrupt, maxFrameBytes: limit)
        } throws: { error in
            if case .checksumMismatch = error as? RPCFrameError { return true }
            return false
        }
    }

    @Test func streamDecoderReassemblesFramesSplitAnywhere() throws {
        var random = SplitMix64(seed: 42)
        var frames: [RPCFrame] = []
        for i in 0..<200 {
            let size = Int.random(in: 0..<300, using: &random)
            let payload: [UInt8] = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            let kind: RPCFrame.Kind = i % 2 == 0 ? .request : .response
            frames.append(RPCFrame(kind: kind, method: UInt16(i), requestID: UInt64(i), payload: payload))
        }
        let stream = frames.flatMap { $0.encoded() }
        var decoder = RPCFrameDecoder(maxFrameBytes: limit)
        var decoded: [RPCFrame] = []
        var offset = 0
        while offset < stream.count {
            let step = min(stream.count - offset, Int.random(in: 1...700, using: &random))
            decoder.append(Array(stream[offset..<(offset + step)]))
            offset += step
            while let frame = try decoder.next() { decoded.append(frame) }
        }
        #expect(decoded == frames)
        #expect(decoder.bufferedCount == 0)
    }

    @Test func backoffDoublesUpToTheCapAndResets() {
        var backoff = ReconnectBackoff(initial: .milliseconds(50), maximum: .milliseconds(500))
        let delays = (0..<6).map { _ in backoff.recordFailure() }
        #expect(delays == [.milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(400),
                           .milliseconds(500), .milliseconds(500)])
        backoff.reset()
        #expect(backoff.recordFailure() == .milliseconds(50))
        #expect(backoff.delay(afterFailures: 1000) == .milliseconds(500))
    }
}
