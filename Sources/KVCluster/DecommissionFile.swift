import KVCore

/// The record that a node left its cluster, `<data-dir>/DECOMMISSIONED` beside the
/// generation file: one line, `<node id> <generation> <wall-clock ms>`.
///
/// It is written once the node's ranges are streamed, before it gossips `left`, so a
/// node can never be seen as left without it. `Node.start` refuses a data directory
/// holding it: the data is what the node held when it left, and rejoining with it would
/// bring back stale copies and deleted keys whose tombstones the others may have
/// purged. The operator wipes the directory to add the machine again (as a new node).
enum DecommissionFile {
    static let fileName = "DECOMMISSIONED"

    /// The recorded line, when the node in `dataDirectory` has left its cluster.
    static func read(dataDirectory: String) -> String? {
        let path = dataDirectory + "/" + fileName
        guard DurableTextFile.exists(path) else { return nil }
        return DurableTextFile.firstLine(path) ?? ""
    }

    /// Records durably that `node` (of `generation`) left at `nowMillis`.
    static func write(node: NodeID, generation: UInt64, nowMillis: UInt64, dataDirectory: String) throws(KVError) {
        try DurableTextFile.write("\(node.name) \(generation) \(nowMillis)", named: fileName, in: dataDirectory)
    }
}
