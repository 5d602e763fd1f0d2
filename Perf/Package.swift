// swift-tools-version:6.1
import PackageDescription

// kvd's benchmarks, a package of their own so release builds of them never slow the main build.
let package = Package(
    name: "kvd-perf",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "kvd", path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // db_bench-style runner for the storage engine (see README.md).
        .executableTarget(
            name: "engine-bench",
            dependencies: [
                .product(name: "KVStorage", package: "kvd"),
                .product(name: "KVCore", package: "kvd"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
                .enableUpcomingFeature("ExistentialAny"),
            ]),
        // Cross-loop hop, same-loop actor call, batched posts and TCP echo on the event loops.
        .executableTarget(
            name: "runtime-bench",
            dependencies: [
                .product(name: "KVRuntime", package: "kvd"),
                .product(name: "KVTransport", package: "kvd"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
                .enableUpcomingFeature("ExistentialAny"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
