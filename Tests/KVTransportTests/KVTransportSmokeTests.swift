import Testing
@testable import KVTransport

@Test func KVTransportBuilds() {}
