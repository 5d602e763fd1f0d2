import Foundation
import KVCore
import Testing
@testable import KVStorage
@testable import kvd_crash_writer

#if canImport(Glibc)
import Glibc
#endif

/// Kills a real writer process (`kvd-crash-writer`, 8 concurrent writers, tiny memtables
/// so flushes and compactions run) with SIGKILL at random moments, then reopens its
/// directory and checks that every acknowledged write is there and nothing that was never
/// attempted appeared. In `sync` mode an acknowledged write is on disk; in `periodic` mode
/// it is in the mapped WAL segment, i.e. the page cache, which a process kill leaves intact.
@Suite struct CrashTests {
    /// The writer binary, built next to this test bundle.
    static func writerPath() throws -> String {
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append((exe as NSString).deletingLastPathComponent)
        }
        candidates.append((CommandLine.arguments[0] as NSString).deletingLastPathComponent)
        candidates.append(Bundle.main.bundlePath)
        for folder in candidates {
            var dir = folder
            // The bundle may be a folder (…/kvdPackageTests.xctest/…); walk up a few levels.
            for _ in 0..<4 {
                let path = dir + "/kvd-crash-writer"
                if FileManager.default.isExecutableFile(atPath: path) { return path }
                dir = (dir as NSString).deletingLastPathComponent
            }
        }
        throw KVError.invalidArgument("kvd-crash-writer not found near \(candidates)")
    }

    @Test func acknowledgedWritesSurviveSIGKILL() async throws {
        try await killAndCheck(rounds: 20, mode: "sync")
    }

    @Test func acknowledgedPeriodicWritesSurviveSIGKILL() async throws {
        try await killAndCheck(rounds: 10, mode: "periodic")
    }

    func killAndCheck(rounds: Int, mode: String) async throws {
        let dir = TemporaryDirectory("crash-" + mode)
        defer { dir.remove() }
        let writer = try Self.writerPath()
        var rng = SystemRandomNumberGenerator()
        var attempted = Set<Key>()
        var acknowledged = Set<Key>()
        var deleteAttempted = Set<Key>()
        var deleted = Set<Key>()
        var totalAcked = 0
        for round in 0..<rounds {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: writer)
            process.arguments = [dir.path, String(round), mode]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Let it start and write for a random while, then kill it mid-flight.
            let delay = UInt64.random(in: 150...600, using: &rng)
            try await Task.sleep(for: .milliseconds(delay))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            // Only whole lines count: the last one may have been cut by the kill.
            for line in output.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                guard line.count > 2 else { continue }
                let key = Key(String(line.dropFirst(2)))
                switch line.first {
                case "A": attempted.insert(key)
                case "P": acknowledged.insert(key); totalAcked += 1
                case "d": deleteAttempted.insert(key)
                case "D": deleted.insert(key)
                default: Issue.record("unexpected line \(line)")
                }
            }

            let engine = try await StorageEngine.open(
                directory: dir.path, settings: smallStorageSettings(), clock: ManualClock(), logger: quietLogger)
            for key in acknowledged {
                let record = try await engine.get(key)
                if deleted.contains(key) {
                    #expect(record?.isTombstone == true, "acknowledged delete of \(key) lost in round \(round)")
                } else if deleteAttempted.contains(key) {
                    #expect(record != nil)
                    if let v = record?.value { #expect(v == CrashWorkload.value(for: key)) }
                } else {
                    #expect(record?.value == CrashWorkload.value(for: key), "acknowledged put of \(key) lost in \(mode) round \(round)")
                }
            }
            // Nothing invented: every stored key was attempted, with the right bytes.
            var cursor: ScanCursor? = nil
            repeat {
                let page = try await engine.scan(tokens: Token.min...Token.max, after: cursor, limit: 4096)
                for e in page.entries {
                    #expect(attempted.contains(e.key), "\(e.key) was never written")
                    if let v = e.record.value { #expect(v == CrashWorkload.value(for: e.key)) }
                    if e.record.isTombstone { #expect(deleteAttempted.contains(e.key)) }
                }
                cursor = page.resume
            } while cursor != nil
            await engine.close()
        }
        #expect(totalAcked > 100, "the writer must have acknowledged writes before being killed")
    }
}
