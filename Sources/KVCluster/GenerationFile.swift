import KVCore

/// The generation of a node's last start, kept in `<data-dir>/GENERATION` (one
/// decimal line) so that a restart always gossips a larger generation than the
/// previous run, even when the wall clock went backwards.
enum GenerationFile {
    static let fileName = "GENERATION"

    /// The generation recorded in `dataDirectory`, if any.
    static func read(dataDirectory: String) -> UInt64? {
        DurableTextFile.firstLine(dataDirectory + "/" + fileName).flatMap { UInt64($0) }
    }

    /// Records `generation` durably (temp file, fsync, rename, directory fsync).
    static func write(_ generation: UInt64, dataDirectory: String) throws(KVError) {
        try DurableTextFile.write("\(generation)", named: fileName, in: dataDirectory)
    }
}
