import Testing
@testable import KVRuntime

@Test func KVRuntimeBuilds() {}
