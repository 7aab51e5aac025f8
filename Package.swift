// swift-tools-version: 6.0
import PackageDescription

// Data flows one way: VideoIO → FrameSampler → TemporalCompress → Engine → EventSegmenter → writers.
// C enters the graph in exactly two places: CFFmpeg (only VideoIO imports it) and COpenBLAS
// (DenseCore's tensor kernels and Engine's BLAS runtime). DenseCore holds the value types every
// stage shares (exact media time, RGB images, tensors) so no stage links FFmpeg to speak of them.
// ModelHub (Hugging Face Hub client and cache) is a support module beside the stages: it imports no
// stage, and only the CLI wires it in front of them to turn a repo id into a local directory.
let package = Package(
    name: "densecap",
    products: [
        .executable(name: "densecap", targets: ["densecap"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libswscale-dev", "libavutil-dev"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Cairo draws the needle-in-a-haystack heatmap (text through fontconfig/FreeType, PNG out).
        .systemLibrary(
            name: "CCairo",
            pkgConfig: "cairo",
            providers: [.apt(["libcairo2-dev"])]
        ),
        // Vector kernels with per-CPU clones (AVX-512 / AVX2 / baseline), chosen at load time.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "DenseCore", dependencies: ["COpenBLAS", "CKernels"]),
        .target(
            name: "VideoIO",
            dependencies: ["CFFmpeg", "DenseCore", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "FrameSampler",
            dependencies: ["VideoIO", "DenseCore", .product(name: "Logging", package: "swift-log")]
        ),
        // NVILA's scale-then-compress: Pillow-exact resizes, tile plans and the feature-map ops.
        .target(name: "TemporalCompress", dependencies: ["DenseCore"], exclude: ["README.md"]),
        // The seam between the jobs and a vision-language model: requests (media with times, prompt,
        // sampling) and answers with usage. The native engine and the remote client implement it.
        .target(name: "ModelAPI", dependencies: ["DenseCore"]),
        .target(
            name: "Engine",
            dependencies: ["COpenBLAS", "DenseCore", "TemporalCompress", "ModelAPI", .product(name: "Logging", package: "swift-log")]
        ),
        // The model behind an OpenAI-compatible chat API (vLLM, SGLang, llama.cpp, `densecap serve`):
        // frames encoded as JPEG/PNG data URLs, retries as the openai client does them.
        .target(
            name: "RemoteEngine",
            dependencies: [
                "ModelAPI", "DenseCore", "VideoIO", "TemporalCompress",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Boundary detection on small frames and embeddings; knows nothing of FFmpeg or the model.
        .target(name: "EventSegmenter", dependencies: ["DenseCore", "CKernels"]),
        // Output formats (JSON, CSV, SRT, WebVTT, ActivityNet, HTML) and the evaluation metrics.
        .target(name: "CaptionWriters", dependencies: ["DenseCore", "EventSegmenter"]),
        // The jobs (`segment`, `caption`): settings, manifests, the frame cache, outputs; the CLI
        // only parses flags, calls a job and prints.
        .target(
            name: "Jobs",
            dependencies: ["DenseCore", "VideoIO", "FrameSampler", "Engine", "ModelAPI", "EventSegmenter", "CaptionWriters",
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        // The V-NIAH evaluation (needle in a haystack): haystack features once, cells resumable,
        // the references' scoring and outputs. Sits beside Jobs as another job.
        .target(
            name: "NIAH",
            dependencies: ["DenseCore", "VideoIO", "FrameSampler", "TemporalCompress", "Engine", "ModelAPI", "CaptionWriters", "CCairo",
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "ModelHub",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Archives: the job store (SQLite embedded, PostgreSQL shared), leases, search over captions.
        // Knows no stage: a processor the caller supplies turns one file into events and outputs.
        .target(
            name: "Archive",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `densecap serve`: the native engine behind the OpenAI chat API (Hummingbird), one model, a
        // bounded queue, equal-sampling requests decoded as one batch.
        .target(
            name: "Serve",
            dependencies: ["ModelAPI", "Engine", "VideoIO", "FrameSampler", "TemporalCompress", "DenseCore",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "densecap",
            dependencies: [
                "VideoIO", "FrameSampler", "TemporalCompress", "Engine", "DenseCore", "EventSegmenter", "CaptionWriters",
                "Jobs", "ModelHub", "NIAH", "Archive", "ModelAPI", "RemoteEngine", "Serve",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test videos made with the ffmpeg CLI at test time; shared by the test targets below.
        .target(name: "TestClips", path: "Tests/TestClips", exclude: ["README.md"]),
        .testTarget(name: "DenseCoreTests", dependencies: ["DenseCore"]),
        .testTarget(name: "VideoIOTests", dependencies: ["VideoIO", "DenseCore", "TestClips"]),
        .testTarget(
            name: "FrameSamplerTests", dependencies: ["FrameSampler", "VideoIO", "DenseCore", "TestClips"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "TemporalCompressTests", dependencies: ["TemporalCompress", "DenseCore"],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "DenseCore", "TemporalCompress"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EventSegmenterTests", dependencies: ["EventSegmenter", "DenseCore", "VideoIO"]),
        .testTarget(
            name: "CaptionWritersTests", dependencies: ["CaptionWriters", "EventSegmenter", "DenseCore"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "JobsTests",
            dependencies: ["Jobs", "CaptionWriters", "Engine", "ModelAPI", "EventSegmenter", "FrameSampler", "VideoIO", "DenseCore", "TestClips",
                           .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "NIAHTests",
            dependencies: ["NIAH", "Engine", "ModelAPI", "VideoIO", "DenseCore", "TestClips", .product(name: "Logging", package: "swift-log")],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: ["DenseCore", "Engine", "TestClips", "TestHubServer", "Archive", "TestPostgres"]),
        // A Hub on loopback inside the test process (SwiftNIO's HTTP/1 server directly, so a test
        // can drop a connection mid-body); shared by ModelHubTests and CLITests.
        .target(
            name: "TestHubServer",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestHubServer"
        ),
        .testTarget(
            name: "ServeTests",
            dependencies: ["Serve", "Engine", "ModelAPI", "VideoIO", "DenseCore", "TestClips",
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "TestPostgres", .product(name: "Logging", package: "swift-log")]),
        // A real PostgreSQL server for the archive tests (scripts/test.sh's, or one started here).
        .target(
            name: "TestPostgres",
            dependencies: [.product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestPostgres"
        ),
        // An OpenAI-compatible server on loopback that answers as each test scripts it: answers,
        // error statuses, hangs, dropped connections, malformed JSON, server-sent events.
        .target(
            name: "TestOpenAIServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestOpenAIServer"
        ),
        .testTarget(
            name: "RemoteEngineTests",
            dependencies: ["RemoteEngine", "ModelAPI", "DenseCore", "VideoIO", "TestOpenAIServer",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "ModelHubTests",
            dependencies: ["ModelHub", "TestHubServer", .product(name: "Logging", package: "swift-log")]
        ),
    ]
)
