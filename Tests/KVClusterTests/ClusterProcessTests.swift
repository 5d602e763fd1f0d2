import Foundation
import Glibc
import Testing

/// Three real `kvd serve` processes on 127.0.0.1 forming a cluster through a seed.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ClusterProcessTests {
    /// `kvd` sits next to the test bundle in the build folder.
    static var binary: String? {
        var candidates: [URL] = []
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0])
        for dir in [argv0.deletingLastPathComponent(), argv0.deletingLastPathComponent().deletingLastPathComponent()] {
            candidates.append(dir.appendingPathComponent("kvd"))
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/kvd"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }?.path
    }

    /// One `kvd serve` cluster member and the ports it printed.
    final class Member: @unchecked Sendable {
        let process = Process()
        let log = Pipe()
        var httpPort = 0
        var rpcPort = 0
        var output = ""

        init(binary: String, id: String, dataDir: String, seeds: String?) throws {
            process.executableURL = URL(fileURLWithPath: binary)
            var args = [
                "serve", "--node-id", id, "--data-dir", dataDir, "--http-port", "0", "--resp-port", "0",
                "--rpc-port", "0", "--replication-factor", "3",
            ]
            if let seeds { args += ["--seeds", seeds] }
            process.arguments = args
            process.standardError = log
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }

        /// Reads the log (bounded) until it shows the RPC and HTTP ports.
        func waitUntilServing() throws {
            let handle = log.fileHandleForReading
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                let data = handle.availableData
                if data.isEmpty { break }
                output += String(decoding: data, as: UTF8.self)
                let lines = output.split(separator: "\n")
                if let rpc = lines.first(where: { $0.contains("listening for RPC on") }),
                    let http = lines.first(where: { $0.contains("kvd serving HTTP on") })
                {
                    rpcPort = Self.port(after: "listening for RPC on 127.0.0.1:", in: rpc)
                    httpPort = Self.port(after: "serving HTTP on 127.0.0.1:", in: http)
                    // Keep draining the pipe so the process never blocks on a full one. A
                    // blocking read on a thread of its own, not `readabilityHandler`: tearing a
                    // handler's dispatch source down races the descriptor's close and can crash
                    // in `_dispatch_event_loop_drain` (swift-corelibs-foundation#5507). The
                    // thread ends at end of stream, when the process has exited.
                    Thread { while !handle.availableData.isEmpty {} }.start()
                    return
                }
            }
            throw ProcessTestError.didNotStart(output)
        }

        static func port(after marker: String, in line: Substring) -> Int {
            guard let range = line.range(of: marker) else { return 0 }
            return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
        }

        func kill(_ signal: Int32) {
            Glibc.kill(process.processIdentifier, signal)
            process.waitUntilExit()
        }
    }

    enum ProcessTestError: Error { case didNotStart(String) }

    /// Waits until `/api/v1/cluster` on every port reports a ring of `members` nodes, all up.
    static func waitForFullRing(httpPorts: [Int], members: Int) async throws {
        try await waitFor("every ring to have \(members) members", timeout: .seconds(30)) {
            for port in httpPorts {
                guard let r = try? await TestHTTP.request("GET", port: port, "/api/v1/cluster"), r.status == 200,
                    r.body.contains("\"members\":\(members)"), !r.body.contains("\"up\":false")
                else { return false }
            }
            return true
        }
    }

    @Test(.enabled(if: ClusterProcessTests.binary != nil))
    func threeProcessesSurviveASIGKILLWithoutLosingAcknowledgedWrites() async throws {
        let binary = try #require(Self.binary)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-cluster-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var members: [Member] = []
        defer { for m in members where m.process.isRunning { m.kill(SIGKILL) } }

        let seed = try Member(binary: binary, id: "p1", dataDir: root + "/p1", seeds: nil)
        members.append(seed)
        try seed.waitUntilServing()
        let seeds = "127.0.0.1:\(seed.rpcPort)"
        for id in ["p2", "p3"] {
            let m = try Member(binary: binary, id: id, dataDir: root + "/\(id)", seeds: seeds)
            members.append(m)
            try m.waitUntilServing()
        }
        // The cluster has formed once every node's ring has all three members and a write at
        // `all` succeeds through each node.
        try await Self.waitForFullRing(httpPorts: members.map(\.httpPort), members: 3)
        try await waitFor("the cluster to form", timeout: .seconds(30)) {
            for m in members {
                let r = try? await TestHTTP.request(
                    "POST", port: m.httpPort, "/api/v1/item?consistency=all", body: #"{"key":"hello","value":"aGk="}"#)
                if r?.status != 201 { return false }
            }
            return true
        }
        // Written through p1, read through p2.
        let read = try await TestHTTP.request("GET", port: members[1].httpPort, "/api/v1/item?key=hello&consistency=strong")
        #expect(read.status == 200 && read.body.contains("aGk="))
        let cluster = try await TestHTTP.request("GET", port: members[1].httpPort, "/api/v1/cluster")
        #expect(cluster.status == 200 && cluster.body.contains("p1") && cluster.body.contains("p3"))

        // Load through p1 (W = 2, sync commit); p3 is SIGKILLed mid-load and restarted.
        var acknowledged: [Int] = []
        var restarted: Member?
        for i in 0..<300 {
            if i == 100 { members[2].kill(SIGKILL) }
            if i == 200 {
                let again = try Member(binary: binary, id: "p3", dataDir: root + "/p3", seeds: seeds)
                members.append(again)
                try again.waitUntilServing()
                restarted = again
            }
            let value = Data("value-\(i)".utf8).base64EncodedString()
            if let r = try? await TestHTTP.request(
                "POST", port: seed.httpPort, "/api/v1/item", body: #"{"key":"load-\#(i)","value":"\#(value)"}"#),
                r.status == 201
            {
                acknowledged.append(i)
            }
        }
        #expect(acknowledged.count >= 290)
        let p3 = try #require(restarted)
        try await waitFor("p3 to rejoin", timeout: .seconds(30)) {
            let r = try? await TestHTTP.request(
                "POST", port: p3.httpPort, "/api/v1/item?consistency=all", body: #"{"key":"back","value":"aGk="}"#)
            return r?.status == 201
        }
        // Every acknowledged write is readable at quorum through p2 and through the restarted p3.
        for port in [members[1].httpPort, p3.httpPort] {
            var missing: [Int] = []
            for i in acknowledged {
                let r = try await TestHTTP.request("GET", port: port, "/api/v1/item?key=load-\(i)&consistency=strong")
                let value = Data("value-\(i)".utf8).base64EncodedString()
                if r.status != 200 || !r.body.contains(value) { missing.append(i) }
            }
            #expect(missing.isEmpty, "lost through port \(port): \(missing)")
        }
        // `kvd decommission` against a real `kvd serve`: three nodes at N = 3 cannot lose one.
        let refused = try await DecommissionHTTPTests.kvd(["decommission", "--http", "127.0.0.1:\(members[1].httpPort)"])
        #expect(refused.status == 1 && refused.err.contains("too_few_nodes"), "\(refused.err)")
        for m in members where m.process.isRunning { m.kill(SIGTERM) }
    }

    @Test(.enabled(if: ClusterProcessTests.binary != nil))
    func devRunsAWholeClusterInOneProcess() async throws {
        let binary = try #require(Self.binary)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-dev-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let process = Process()
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "dev", "--nodes", "3", "--http-port", "0", "--resp-port", "0", "--data-dir", root, "--commit-mode", "periodic",
        ]
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) } }
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !text.contains("kvd dev:") {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        // "node<i>: HTTP 127.0.0.1:<port>  RESP 127.0.0.1:<port>  RPC …"
        let httpPorts = text.split(separator: "\n").filter { $0.hasPrefix("node") }.compactMap { line -> Int? in
            guard let range = line.range(of: "HTTP 127.0.0.1:") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(httpPorts.count == 3, "\(text)")
        guard httpPorts.count == 3 else { return }
        // Until gossip has converged, a node's ring may lack a member, and `all` means all of the
        // replicas that node knows of: wait for every ring to be whole first.
        try await Self.waitForFullRing(httpPorts: httpPorts, members: 3)
        try await waitFor("the dev cluster to accept writes at all", timeout: .seconds(20)) {
            let r = try? await TestHTTP.request(
                "POST", port: httpPorts[0], "/api/v1/item?consistency=all", body: #"{"key":"dev","value":"ZGV2"}"#)
            return r?.status == 201
        }
        let read = try await TestHTTP.request("GET", port: httpPorts[2], "/api/v1/item?key=dev&consistency=one")
        #expect(read.status == 200 && read.body.contains("ZGV2"))
        Glibc.kill(process.processIdentifier, SIGTERM)
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning && process.terminationStatus == 0)
    }
}
