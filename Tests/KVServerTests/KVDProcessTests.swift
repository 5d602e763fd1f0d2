import Foundation
import Glibc
import Testing
@testable import KVServer

/// The built `kvd` executable, run as a real process: serve, answer, SIGTERM,
/// clean exit, and the data survives a restart.
@Suite(.timeLimit(.minutes(1)))
struct KVDProcessTests {
    /// `kvd` sits next to the test bundle in the build folder.
    static var binary: String? {
        var candidates: [URL] = []
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0])
        for dir in [argv0.deletingLastPathComponent(), argv0.deletingLastPathComponent().deletingLastPathComponent()] {
            candidates.append(dir.appendingPathComponent("kvd"))
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/kvd"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }?.path
    }

    /// A running `kvd serve` and the ports it printed.
    final class Daemon: @unchecked Sendable {
        let process = Process()
        let log = Pipe()
        var httpPort = 0
        var respPort = 0
        var output = ""

        init(binary: String, dataDir: String) throws {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--data-dir", dataDir, "--http-port", "0", "--resp-port", "0"]
            process.standardError = log
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }

        /// Reads the log until the "serving" line gives both ports (bounded).
        func waitUntilServing() throws {
            let handle = log.fileHandleForReading
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let data = handle.availableData
                if data.isEmpty { break }
                output += String(decoding: data, as: UTF8.self)
                if let line = output.split(separator: "\n").first(where: { $0.contains("kvd serving HTTP on") }) {
                    let ports = line.split(separator: ":").compactMap { Int($0.prefix { $0.isNumber }) }
                    httpPort = ports[ports.count - 2]
                    respPort = ports[ports.count - 1]
                    return
                }
            }
            throw KVDTestError.didNotStart(output)
        }

        /// Sends SIGTERM and waits (bounded) for the exit status.
        func terminate() async throws -> Int32 {
            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                throw KVDTestError.didNotStop
            }
            return process.terminationStatus
        }
    }

    enum KVDTestError: Error { case didNotStart(String), didNotStop }

    @Test(.enabled(if: KVDProcessTests.binary != nil)) func serveTerminateRestart() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let binary = try #require(Self.binary)

        let first = try Daemon(binary: binary, dataDir: dir.path)
        try first.waitUntilServing()
        let clientLoop = EventLoopForTests.make()
        defer { clientLoop.shutdown() }
        let h = HTTPTestClient(connection: try await TCPConnectionForTests.connect(port: first.httpPort, loop: clientLoop))
        #expect(try await h.request("POST", "/api/v1/item", body: #"{"key":"proc","value":"c3Vydml2ZXM="}"#).status == 201)
        h.close()
        let r = RESPTestClient(connection: try await TCPConnectionForTests.connect(port: first.respPort, loop: clientLoop))
        try await r.send("SET", "resp-key", "kept")
        #expect(try await r.read("+OK\r\n") == "+OK\r\n")
        r.close()
        #expect(try await first.terminate() == 0)

        let second = try Daemon(binary: binary, dataDir: dir.path)
        try second.waitUntilServing()
        let h2 = HTTPTestClient(connection: try await TCPConnectionForTests.connect(port: second.httpPort, loop: clientLoop))
        let get = try await h2.request("GET", "/api/v1/item?key=proc")
        #expect(get.status == 200)
        #expect(get.json["value"] == .string("c3Vydml2ZXM="))
        let get2 = try await h2.request("GET", "/api/v1/item?key=resp-key")
        #expect(get2.json["value"] == .string("a2VwdA=="))
        h2.close()
        #expect(try await second.terminate() == 0)
    }
}
