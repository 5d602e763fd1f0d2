import Testing
@testable import KVServer

@Test func KVServerBuilds() {}
