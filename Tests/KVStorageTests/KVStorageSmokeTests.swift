import Testing
@testable import KVStorage

@Test func KVStorageBuilds() {}
