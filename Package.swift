// swift-tools-version:6.1
import PackageDescription

// kvd: a leaderless, Dynamo-style distributed key-value store.
// Modules are layered by dependency (see ../shared/DESIGN.md): a lower module never imports a higher one.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "kvd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kvd", targets: ["kvd"]),
        .library(name: "KVCore", targets: ["KVCore"]),
        .library(name: "KVStorage", targets: ["KVStorage"]),
        .library(name: "KVRuntime", targets: ["KVRuntime"]),
        .library(name: "KVTransport", targets: ["KVTransport"]),
        .library(name: "KVServer", targets: ["KVServer"]),
        .library(name: "KVCluster", targets: ["KVCluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // Thin C shims for what Glibc does not expose to Swift (epoll, eventfd, affinity, CRC32C instruction).
        .target(name: "CKVSystem"),
        .target(name: "KVCore", dependencies: ["CKVSystem"], swiftSettings: strict),
        .target(
            name: "KVStorage",
            dependencies: ["KVCore", "CKVSystem", .product(name: "Logging", package: "swift-log")],
            exclude: ["FORMAT.md"],
            swiftSettings: strict),
        .target(
            name: "KVRuntime",
            dependencies: ["KVCore", "CKVSystem", .product(name: "Atomics", package: "swift-atomics")],
            swiftSettings: strict),
        .target(
            name: "KVTransport",
            dependencies: ["KVRuntime", "KVCore", "CKVSystem", .product(name: "Logging", package: "swift-log")],
            exclude: ["FORMAT.md"],
            swiftSettings: strict),
        .target(
            name: "KVServer",
            dependencies: [
                "KVCore", "KVStorage", "KVRuntime", "KVTransport", "KVCluster",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "KVCluster",
            dependencies: [
                "KVCore", "KVStorage", "KVRuntime", "KVTransport",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["FORMAT.md"],
            swiftSettings: strict),
        .executableTarget(
            name: "kvd",
            dependencies: [
                "KVServer", "KVCluster", "KVStorage", "KVCore", "KVRuntime", "KVTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The child process of KVStorageTests' crash test: writes in sync mode until SIGKILLed.
        .executableTarget(name: "kvd-crash-writer", dependencies: ["KVStorage", "KVCore"], swiftSettings: strict),

        .testTarget(
            name: "KVCoreTests",
            dependencies: ["KVCore", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict),
        .testTarget(
            name: "KVStorageTests",
            dependencies: [
                "KVStorage", "KVCore", "kvd-crash-writer",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(name: "KVTestSupport", path: "Tests/KVTestSupport", swiftSettings: strict),
        .testTarget(name: "KVRuntimeTests", dependencies: ["KVRuntime", "KVTestSupport"], swiftSettings: strict),
        .testTarget(name: "KVTransportTests", dependencies: ["KVTransport", "KVRuntime", "KVCore", "KVTestSupport"], swiftSettings: strict),
        .testTarget(name: "KVServerTests", dependencies: ["KVServer", "KVStorage", "KVCore", "kvd"], swiftSettings: strict),
        .testTarget(
            name: "KVClusterTests",
            dependencies: [
                "KVCluster", "KVCore", "KVStorage", "KVRuntime", "KVTransport", "KVServer", "kvd",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
