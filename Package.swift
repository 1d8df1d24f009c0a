// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "parley",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "parley", targets: ["parley"]),
        .library(name: "ParleyServer", targets: ["ParleyServer"]),
        .executable(name: "parley-bench", targets: ["parley-bench"]),
        .library(name: "AgentGraph", targets: ["AgentGraph"]),
        .library(name: "AgentGraphSQL", targets: ["AgentGraphSQL"]),
        .library(name: "LLM", targets: ["LLM"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Learning", targets: ["Learning"]),
        .executable(name: "agentgraph-bench", targets: ["agentgraph-bench"]),
        .executable(name: "imaging-bench", targets: ["imaging-bench"]),
        .executable(name: "learning-bench", targets: ["learning-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/vapor.git", from: "4.115.0"),
        .package(url: "https://github.com/vapor/fluent.git", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-sqlite-driver.git", from: "4.9.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver.git", from: "2.14.0"),
        .package(url: "https://github.com/vapor/jwt.git", from: "5.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/websocket-kit.git", from: "2.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
    ],
    targets: [
        .executableTarget(
            name: "parley",
            dependencies: ["ParleyServer"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ParleyServer",
            dependencies: [
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "JWT", package: "jwt"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                "LLM",
                "AgentGraph",
                "AgentGraphSQL",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Atomics", package: "swift-atomics"),
                "Imaging",
                "Learning",
            ],
            resources: [.copy("Resources/openapi.yaml"), .copy("Resources/Public")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "parley-bench",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "WebSocketKit", package: "websocket-kit"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // A LangGraph-class graph runtime: Foundation only, no server or database code.
        .target(
            name: "AgentGraph",
            swiftSettings: swiftSettings + [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
        ),
        // Machine learning for the models Parley trains itself (text features, classifiers,
        // evaluation, drift, clustering, a model file format): Foundation only.
        .target(
            name: "Learning",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "learning-bench",
            dependencies: ["Learning"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LearningTests",
            dependencies: ["Learning"],
            swiftSettings: swiftSettings
        ),
        // Pictures decoded and thumbnails encoded by hand (PNG, JPEG, GIF): no listed package
        // decodes images. Foundation and zlib (through CompressNIO) only.
        .target(
            name: "Imaging",
            dependencies: [
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "imaging-bench",
            dependencies: ["Imaging"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ImagingTests",
            dependencies: ["Imaging"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        // AgentGraph's checkpointer and store over SQLKit: SQLite and PostgreSQL alike.
        .target(
            name: "AgentGraphSQL",
            dependencies: [
                "AgentGraph",
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        // Chat-model clients (OpenAI-compatible servers, a scripted model) and resilience
        // around them: no server or database code.
        .target(
            name: "LLM",
            dependencies: [
                "AgentGraph",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LLMTests",
            dependencies: [
                "LLM",
                .product(name: "Vapor", package: "vapor"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "agentgraph-bench",
            dependencies: [
                "AgentGraph",
                "AgentGraphSQL",
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AgentGraphTests",
            dependencies: [
                "AgentGraph",
                "AgentGraphSQL",
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ParleyServerTests",
            dependencies: [
                "ParleyServer",
                "Imaging",
                .product(name: "VaporTesting", package: "vapor"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
